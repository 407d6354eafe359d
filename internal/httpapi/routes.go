package httpapi

import "github.com/labstack/echo/v4"

// routes registers the whole API surface. Every /v1 operation runs the
// principal resolver chain (auth); handlers that need a caller answer 401
// when there is none. Health checks and the OpenAPI document are public.
func (s *Server) routes() {
	e, svc := s.e, s.deps.Service
	dec := bodyDecoder{limit: s.cfg.BodyLimit}
	e.Use(s.frame())

	e.GET("/healthz", healthz())
	e.GET("/readyz", readyz(s.deps.Ready, s.log))
	e.GET("/v1/openapi.json", openAPIDocument())
	if s.deps.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(s.deps.Metrics.Handler()))
	}

	// The AuthZEN API (authzen.go): the PEP authenticates itself; the
	// subject it names is not the caller, so the resolver chain does not run.
	pep := s.authzenPEP()
	e.GET(authzenDiscoveryPath, s.authzenConfiguration())
	e.POST(authzenEvaluationPath, authzenEvaluate(svc, dec), pep)
	e.POST(authzenEvaluationsPath, authzenEvaluateMany(svc, dec), pep)

	// The resolver runs per route rather than as group middleware: echo
	// answers a group's unmatched paths with 404 even for a known path with
	// the wrong method, which must be 405.
	v1, auth := e.Group("/v1"), resolvePrincipal(s.deps.Principals, s.log)

	v1.POST("/authorize", authorize(svc, dec), auth)
	v1.GET("/whoami", whoami(svc), auth)
	v1.Match(forwardAuthMethods, forwardAuthPath, forwardAuth(svc), auth)
	v1.Match(forwardAuthMethods, forwardAuthPath+"/envoy/*", forwardAuth(svc), auth)

	v1.GET("/agents", listAgents(svc), auth)
	v1.POST("/agents", createAgent(svc, dec), auth)
	v1.GET("/agents/:agent", showAgent(svc), auth)
	v1.PATCH("/agents/:agent", updateAgent(svc, dec), auth)
	v1.DELETE("/agents/:agent", deleteAgent(svc), auth)
	v1.GET("/agents/:agent/access", checkAccess(svc), auth)

	v1.GET("/agents/:agent/tokens", listTokens(svc), auth)
	v1.POST("/agents/:agent/tokens", createToken(svc, dec), auth)
	v1.DELETE("/agents/:agent/tokens/:token_id", revokeToken(svc), auth)

	v1.GET("/agents/:agent/grants", listGrants(svc), auth)
	v1.PUT("/agents/:agent/grants/:principal", putGrant(svc, dec), auth)
	v1.DELETE("/agents/:agent/grants/:principal", deleteGrant(svc), auth)

	v1.GET("/users", listUsers(svc), auth)
	v1.POST("/users", createUser(svc, dec), auth)
	v1.PATCH("/users/:user", updateUser(svc, dec), auth)
}
