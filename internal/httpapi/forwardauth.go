package httpapi

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// Forward-auth: a gateway (nginx auth_request, Traefik ForwardAuth, Caddy
// forward_auth, Envoy's HTTP ext_authz) asks whether the request it holds
// may pass. The caller is the forwarded request's credential (resolved by
// the principal chain like any /v1 request); the original method and URI
// come from the gateway's headers, or for Envoy from the path under
// forwardAuthEnvoy; the policy's route table says what they mean.
const (
	forwardAuthPath  = "/forward-auth"
	forwardAuthEnvoy = "/v1/forward-auth/envoy"

	// maxOriginalURI and maxSegments bound what one original request may carry.
	maxOriginalURI = 8192
	maxSegments    = 64
)

// forwardAuthMethods are the methods the endpoint answers (the methods a
// gateway sends, and for Envoy the original request's own).
var forwardAuthMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// The response headers a gateway may copy upstream. Never the token.
const (
	headerFAAgent    = "X-Agentauthz-Agent"
	headerFAOwner    = "X-Agentauthz-Owner"
	headerFADecision = "X-Agentauthz-Decision-Id"
	headerFAAction   = "X-Agentauthz-Action"
	headerFATool     = "X-Agentauthz-Tool"
)

// The original-request headers each gateway sends, as [method, uri] pairs.
var originalHeaderPairs = [][2]string{
	{"X-Original-Method", "X-Original-URI"},   // nginx auth_request (set in the config)
	{"X-Forwarded-Method", "X-Forwarded-Uri"}, // Traefik ForwardAuth, Caddy forward_auth
}

type forwardAuthBody struct {
	Allow      bool    `json:"allow"`
	Agent      string  `json:"agent"`
	AgentID    int64   `json:"agent_id"`
	Owner      string  `json:"owner,omitempty"`
	Action     string  `json:"action"`
	Tool       *string `json:"tool,omitempty"`
	DecisionID string  `json:"decision_id"`
}

// forwardAuth answers 200 only when a route matched and the runtime
// decision on it allowed; 401 when there is no credential (or only the
// anonymous caller, and it was denied or named an unknown agent); 403 when
// no route matches or the policy says no; 400 for a missing, conflicting or
// unsafe original request.
func forwardAuth(svc *authz.Service) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := caller(c)
		if err != nil {
			return err
		}
		r := c.Request()
		method, segments, err := originalRequest(r)
		if err != nil {
			return err
		}
		res, err := svc.ForwardAuth(r.Context(), p, authz.ForwardRequest{Method: method, Segments: segments, Header: r.Header.Values})
		anonymous := p.Kind == principal.KindAnonymous
		var nf *authz.NotFoundError
		switch {
		case errors.As(err, &nf) && anonymous:
			// Which agents exist is not the anonymous caller's to learn:
			// an unknown agent gets the answer of an existing one it may
			// not use.
			return errAuthRequired
		case errors.As(err, &nf):
			// 403, not 404: nginx's auth_request treats any status but
			// 2xx, 401 and 403 as an error of its own.
			return &apiError{Status: http.StatusForbidden, Code: nf.Code, Message: nf.Message}
		case err != nil:
			return err
		}
		if !res.Routed {
			return &apiError{Status: http.StatusForbidden, Code: "no_route", DeniedBy: res.DeniedBy,
				Message: "no route of the policy's route table matches " + method + " of the original request"}
		}
		d := res.Decision
		c.Set(ctxDecisionID, d.DecisionID)
		if !d.Allow && anonymous {
			// No decision id header either: it would tell an existing
			// agent from an unknown one (the access log keeps the id).
			return errAuthRequired
		}
		h := c.Response().Header()
		h.Set(headerFADecision, d.DecisionID)
		if !d.Allow {
			return &apiError{Status: http.StatusForbidden, Code: "forbidden", DeniedBy: d.DeniedBy,
				Message: "the policy denies " + res.Route.Action + " on agent " + res.AgentSlug + ": " + strings.Join(d.Reasons, "; ")}
		}
		h.Set(headerFAAgent, res.AgentSlug)
		if res.OwnerLogin != "" {
			h.Set(headerFAOwner, res.OwnerLogin)
		}
		h.Set(headerFAAction, res.Route.Action)
		if res.Route.Tool != nil {
			h.Set(headerFATool, *res.Route.Tool)
		}
		h.Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, forwardAuthBody{Allow: true, Agent: res.AgentSlug, AgentID: d.AgentID, Owner: res.OwnerLogin,
			Action: res.Route.Action, Tool: res.Route.Tool, DecisionID: d.DecisionID})
	}
}

func badOriginal(field, format string, args ...any) *apiError {
	return badRequest("invalid_original_request", field, format, args...)
}

// originalRequest finds the original method and path segments of a
// forwarded request: from the path under forwardAuthEnvoy with the
// request's own method (Envoy), else from the gateway's headers. Every pair
// of original-request headers present must agree with the others (and with
// Envoy's path); none at all, half a pair or a header sent twice is 400.
func originalRequest(r *http.Request) (string, []string, error) {
	type original struct{ method, uri, from string }
	var found []original
	if uri, ok := strings.CutPrefix(r.RequestURI, forwardAuthEnvoy); ok && (uri == "" || uri[0] == '/' || uri[0] == '?') {
		found = append(found, original{r.Method, uri, "the path under " + forwardAuthEnvoy})
	}
	for _, pair := range originalHeaderPairs {
		ms, us := r.Header.Values(pair[0]), r.Header.Values(pair[1])
		switch {
		case len(ms) == 0 && len(us) == 0:
			continue
		case len(ms) > 1 || len(us) > 1:
			return "", nil, badOriginal("", "%s and %s must each be sent at most once", pair[0], pair[1])
		case len(ms) == 0 || len(us) == 0:
			return "", nil, badOriginal("", "%s and %s must be sent together", pair[0], pair[1])
		}
		found = append(found, original{ms[0], us[0], pair[0] + "/" + pair[1]})
	}
	if len(found) == 0 {
		return "", nil, badOriginal("", "the original request is missing: send X-Original-Method and X-Original-URI (nginx), "+
			"X-Forwarded-Method and X-Forwarded-Uri (Traefik, Caddy), or call %s/<original path> (Envoy)", forwardAuthEnvoy)
	}
	method, segments, err := parseOriginal(found[0].method, found[0].uri, found[0].from)
	if err != nil {
		return "", nil, err
	}
	for _, o := range found[1:] {
		m, s, err := parseOriginal(o.method, o.uri, o.from)
		if err != nil {
			return "", nil, err
		}
		if m != method || !equalStrings(s, segments) {
			return "", nil, badOriginal("", "conflicting original requests: %s and %s disagree", found[0].from, o.from)
		}
	}
	return method, segments, nil
}

// parseOriginal checks the original method and splits the original URI's
// path into segments, each percent-decoded once. It refuses what could make
// the route table and the upstream disagree about the path: anything but an
// origin-form path (absolute or scheme-relative URLs), empty, "." and ".."
// segments (also encoded), encoded slashes and backslashes, a '%' left after
// decoding (double encoding) and control characters.
func parseOriginal(method, uri, from string) (string, []string, error) {
	if method == "" || len(method) > 20 || strings.IndexFunc(method, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
		return "", nil, badOriginal("", "the original method (from %s) must be an upper-case HTTP method", from)
	}
	if len(uri) > maxOriginalURI {
		return "", nil, badOriginal("", "the original URI (from %s) is longer than %d bytes", from, maxOriginalURI)
	}
	path, _, _ := strings.Cut(uri, "?")
	path, _, _ = strings.Cut(path, "#")
	if path == "" {
		path = "/"
	}
	if path[0] != '/' || strings.HasPrefix(path, "//") {
		return "", nil, badOriginal("", "the original URI (from %s) must be a path starting with a single /, not an absolute URL", from)
	}
	if path == "/" {
		return method, []string{}, nil
	}
	raw := strings.Split(path[1:], "/")
	if len(raw) > maxSegments {
		return "", nil, badOriginal("", "the original path (from %s) has more than %d segments", from, maxSegments)
	}
	segments := make([]string, len(raw))
	for i, s := range raw {
		lower := strings.ToLower(s)
		if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
			return "", nil, badOriginal("", "the original path (from %s) has an encoded slash or backslash", from)
		}
		d, err := url.PathUnescape(s)
		if err != nil {
			return "", nil, badOriginal("", "the original path (from %s) has an invalid percent-encoding", from)
		}
		switch {
		case d == "":
			return "", nil, badOriginal("", "the original path (from %s) has an empty segment", from)
		case d == "." || d == "..":
			return "", nil, badOriginal("", "the original path (from %s) has a dot segment", from)
		case strings.ContainsAny(d, `%\`):
			return "", nil, badOriginal("", "the original path (from %s) is encoded twice or has a backslash", from)
		case strings.IndexFunc(d, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
			return "", nil, badOriginal("", "the original path (from %s) has a control character", from)
		}
		segments[i] = d
	}
	return method, segments, nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
