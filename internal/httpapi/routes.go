package httpapi

// routes registers the whole API surface. /v1 runs the principal resolver
// chain; handlers that need a caller answer 401 when there is none.
func (s *Server) routes() {
	e, svc := s.e, s.deps.Service
	dec := bodyDecoder{limit: s.cfg.BodyLimit}
	e.Use(s.frame())

	e.GET("/healthz", healthz())
	e.GET("/readyz", readyz(s.deps.Ready, s.log))
	e.GET("/v1/openapi.json", openAPIDocument())

	v1 := e.Group("/v1", resolvePrincipal(s.deps.Principals, s.log))

	v1.POST("/authorize", authorize(svc, dec))
	v1.GET("/whoami", whoami(svc))

	v1.GET("/agents", listAgents(svc))
	v1.POST("/agents", createAgent(svc, dec))
	v1.GET("/agents/:agent", showAgent(svc))
	v1.PATCH("/agents/:agent", updateAgent(svc, dec))
	v1.DELETE("/agents/:agent", deleteAgent(svc))
	v1.GET("/agents/:agent/access", checkAccess(svc))

	v1.GET("/agents/:agent/tokens", listTokens(svc))
	v1.POST("/agents/:agent/tokens", createToken(svc, dec))
	v1.DELETE("/agents/:agent/tokens/:token_id", revokeToken(svc))

	v1.GET("/agents/:agent/grants", listGrants(svc))
	v1.PUT("/agents/:agent/grants/:principal", putGrant(svc, dec))
	v1.DELETE("/agents/:agent/grants/:principal", deleteGrant(svc))

	v1.GET("/users", listUsers(svc))
	v1.POST("/users", createUser(svc, dec))
	v1.PATCH("/users/:user", updateUser(svc, dec))
}
