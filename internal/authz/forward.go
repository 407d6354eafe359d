package authz

import (
	"context"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// ForwardRequest is a gateway's original request, as facts: its method, its
// path split at "/" and percent-decoded once (the caller refuses encoded
// slashes, dot and empty segments), and a way to read its headers.
type ForwardRequest struct {
	Method   string
	Segments []string
	// Header returns every value of a request header (canonical or not).
	Header func(name string) []string
}

// ForwardResult answers a forward-auth request. Routed is false when no
// route of the policy's table matched (DeniedBy/Reasons then say so);
// otherwise Route is what the request means and Decision the runtime
// decision on it, made exactly as Authorize makes it.
type ForwardResult struct {
	Routed   bool
	DeniedBy []string
	Reasons  []string
	Route    policy.Route
	Decision AuthorizeResult
	// AgentSlug and OwnerLogin name the agent decided on and its owner ("" when missing).
	AgentSlug  string
	OwnerLogin string
}

// sensitiveHeaders are never passed to the policy, whatever the route table
// names: they carry credentials.
var sensitiveHeaders = map[string]bool{"authorization": true, "proxy-authorization": true, "cookie": true}

// ForwardAuth decides a gateway's forwarded request in two steps: the
// policy's route table (ability "forward-auth", package routes) says which
// agent, action and tool the original method and path mean; then the very
// runtime decision of Authorize is made on them. Only the headers the route
// table names (Activation.RouteHeaders) are passed to the policy, and a
// header sent more than once is refused rather than guessed at.
func (s *Service) ForwardAuth(ctx context.Context, p *principal.Principal, req ForwardRequest) (ForwardResult, error) {
	headers := make([][2]*ast.Term, 0, 1)
	for _, name := range s.engine.Activation().RouteHeaders {
		if sensitiveHeaders[name] || req.Header == nil {
			continue
		}
		switch vs := req.Header(name); len(vs) {
		case 0:
		case 1:
			headers = append(headers, ast.Item(ast.StringTerm(name), ast.StringTerm(vs[0])))
		default:
			return ForwardResult{}, invalid("invalid_header", strings.ToLower(name), "header %s is sent %d times; send it once", name, len(vs))
		}
	}
	f := (&facts{ability: "forward-auth", principal: p}).request("request",
		item("method", str(req.Method)),
		item("segments", stringsTerm(req.Segments)),
		item("headers", ast.ObjectTerm(headers...)),
	)
	d, err := s.decide(ctx, f)
	if err != nil {
		return ForwardResult{}, err
	}
	if !d.Allow || d.Route == nil {
		deniedBy := d.DeniedBy
		if len(deniedBy) == 0 {
			deniedBy = []string{"no_route"}
		}
		return ForwardResult{DeniedBy: deniedBy, Reasons: d.Reasons}, nil
	}
	out := ForwardResult{Routed: true, Route: *d.Route}
	af, err := s.authorizeFacts(ctx, p, AuthorizeRequest{Action: d.Route.Action, Tool: d.Route.Tool, Agent: d.Route.Agent})
	if err != nil {
		return ForwardResult{}, err
	}
	ad, memoized, err := s.evaluate(ctx, af)
	if err != nil {
		return ForwardResult{}, err
	}
	out.Decision = authorizeResult(ad, af.agent.ID, memoized)
	out.AgentSlug = af.agent.Slug
	if af.owner != nil {
		out.OwnerLogin = af.owner.Login
	}
	return out, nil
}
