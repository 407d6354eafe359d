package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// getHead are the methods of every read route: HEAD runs the GET handler
// and net/http drops the body, so status and headers are the GET's.
var getHead = []string{http.MethodGet, http.MethodHead}

// routes registers the whole API surface. Every /v1 operation runs the
// principal resolver chain (auth); handlers that need a caller answer 401
// when there is none. Health checks and the OpenAPI document are public.
func (s *Server) routes() {
	e, svc := s.e, s.deps.Service
	dec := bodyDecoder{limit: s.cfg.BodyLimit}
	e.Use(s.frame())

	e.Match(getHead, "/healthz", healthz())
	e.Match(getHead, "/readyz", readyz(s.deps.Ready, s.log))
	e.Match(getHead, "/v1/openapi.json", openAPIDocument())
	if s.deps.Metrics != nil {
		e.Match(getHead, "/metrics", echo.WrapHandler(s.deps.Metrics.Handler()))
	}

	// The AuthZEN API (authzen.go): the PEP authenticates itself; the
	// subject it names is not the caller, so the resolver chain does not run.
	pep := s.authzenPEP()
	e.Match(getHead, authzenDiscoveryPath, s.authzenConfiguration())
	e.POST(authzenEvaluationPath, authzenEvaluate(svc, dec), pep)
	e.POST(authzenEvaluationsPath, authzenEvaluateMany(svc, dec), pep)
	e.POST(authzenSearchSubjectPath, authzenSearchSubject(svc, dec), pep)
	e.POST(authzenSearchResourcePath, authzenSearchResource(svc, dec), pep)
	e.POST(authzenSearchActionPath, authzenSearchAction(svc, dec), pep)

	// The resolver runs per route rather than as group middleware: echo
	// answers a group's unmatched paths with 404 even for a known path with
	// the wrong method, which must be 405.
	v1, auth := e.Group("/v1"), resolvePrincipal(s.deps.Principals, s.log)

	v1.POST("/authorize", authorize(svc, dec), auth)
	v1.Match(getHead, "/whoami", whoami(svc), auth)
	v1.Match(forwardAuthMethods, forwardAuthPath, forwardAuth(svc), auth)
	v1.Match(forwardAuthMethods, forwardAuthPath+"/envoy/*", forwardAuth(svc), auth)

	v1.Match(getHead, "/agents", listAgents(svc), auth)
	v1.POST("/agents", createAgent(svc, dec), auth)
	v1.Match(getHead, "/agents/:agent", showAgent(svc), auth)
	v1.PATCH("/agents/:agent", updateAgent(svc, dec), auth)
	v1.DELETE("/agents/:agent", deleteAgent(svc), auth)
	v1.Match(getHead, "/agents/:agent/access", checkAccess(svc), auth)

	v1.Match(getHead, "/agents/:agent/tokens", listTokens(svc), auth)
	v1.POST("/agents/:agent/tokens", createToken(svc, dec), auth)
	v1.DELETE("/agents/:agent/tokens/:token_id", revokeToken(svc), auth)

	v1.Match(getHead, "/agents/:agent/grants", listGrants(svc), auth)
	v1.PUT("/agents/:agent/grants/:principal", putGrant(svc, dec), auth)
	v1.DELETE("/agents/:agent/grants/:principal", deleteGrant(svc), auth)

	v1.Match(getHead, "/users", listUsers(svc), auth)
	v1.POST("/users", createUser(svc, dec), auth)
	v1.PATCH("/users/:user", updateUser(svc, dec), auth)
}
