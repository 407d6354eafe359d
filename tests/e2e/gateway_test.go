package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// gatewayKind is what differs between the real gateways the README
// configures; the scenario they run is one (forwardAuthScenario).
type gatewayKind struct {
	name  string // for messages: "nginx", "Caddy"
	bin   func(t *testing.T) string
	start startGateway
	// originalMethod and originalURI are the headers through which the
	// gateway names the original request to agentauthz; copies a client
	// sends must be overwritten.
	originalMethod, originalURI string
	// errorBodies: the client gets agentauthz's JSON error with its
	// denied_by (Caddy's forward_auth copies the check's answer; nginx's
	// auth_request keeps only the status).
	errorBodies bool
	// refusedStatus is what the client gets when agentauthz refuses to
	// interpret the original path (400): nginx's auth_request turns any
	// status other than 2xx, 401 and 403 into 500.
	refusedStatus int
}

var (
	nginxKind = gatewayKind{name: "nginx", bin: nginxBinary, start: startNginx,
		originalMethod: "X-Original-Method", originalURI: "X-Original-URI",
		refusedStatus: http.StatusInternalServerError}
	caddyKind = gatewayKind{name: "Caddy", bin: caddyBinary, start: startCaddy,
		originalMethod: "X-Forwarded-Method", originalURI: "X-Forwarded-Uri",
		errorBodies: true, refusedStatus: http.StatusBadRequest}
)

// Real nginx (Debian's package, auth_request) runs the README's
// forward-auth example in front of a recording upstream.
func TestNginxForwardAuthGateway(t *testing.T) { forwardAuthScenario(t, nginxKind) }

// Real Caddy (built from its Go module at the pinned version, forward_auth)
// runs the README's Caddyfile example in front of a recording upstream.
func TestCaddyForwardAuthGateway(t *testing.T) { forwardAuthScenario(t, caddyKind) }

// The checks of the scenario can fail: with the gateway's check pointed at
// an authorizer that answers 200 to everything, the denial check reports
// the request that got through.
func TestNginxForwardAuthGatewayCheckCatchesAnAlways200Authorizer(t *testing.T) {
	t.Parallel()
	checkCatchesAnAlways200Authorizer(t, nginxBinary(t), startNginx)
}

func TestCaddyForwardAuthGatewayCheckCatchesAnAlways200Authorizer(t *testing.T) {
	t.Parallel()
	checkCatchesAnAlways200Authorizer(t, caddyBinary(t), startCaddy)
}

// forwardAuthScenario: only what agentauthz allows reaches the upstream,
// with the identity headers the gateway copies from the check's answer; a
// denial, a missing or revoked credential, a path outside the route table
// and a path agentauthz refuses to interpret stop at the gateway. Every
// step counts the upstream's hits exactly, on both stores.
func forwardAuthScenario(t *testing.T, kind gatewayKind) {
	t.Parallel()
	bin := kind.bin(t)
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		// No --trusted-proxies here (the last step trusts the gateway with
		// a server of its own). An hour of cache: the revocation below must
		// evict, not expire.
		srv := startServer(t, db, "--cache-ttl=1h")
		up := newUpstream(t)
		gw := kind.start(t, bin, srv.base, up)

		full := mintCLI(t, db, "chubes-bot")
		chatOnly := mintCLI(t, db, "chubes-bot", `--capabilities=["datamachine_chat"]`)

		through := func(t *testing.T, want passage, method, path, body string, opts ...reqOpt) *response {
			t.Helper()
			r, err := want.check(t, gw, up, method, path, body, opts...)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		t.Run("an allowed request reaches the upstream with the agent's identity", func(t *testing.T) {
			r := through(t, passes, "POST", "/agents/chubes-bot/chat?stream=1", `{"message":"hi"}`, bearer(full.Token))
			if want := "upstream answered POST /agents/chubes-bot/chat?stream=1"; string(r.body) != want {
				t.Errorf("body %q, want the upstream's answer %q", r.body, want)
			}
			wantUpstreamIdentity(t, up, "POST", "/agents/chubes-bot/chat?stream=1", `{"message":"hi"}`, "chat", "")
			through(t, passes, "POST", "/agents/chubes-bot/tools/web_search", "", bearer(full.Token))
			wantUpstreamIdentity(t, up, "POST", "/agents/chubes-bot/tools/web_search", "", "use_tools", "web_search")
			through(t, passes, "POST", "/agents/chubes-bot/chat", "", bearer(chatOnly.Token))
			wantUpstreamIdentity(t, up, "POST", "/agents/chubes-bot/chat", "", "chat", "")
		})
		t.Run("identity headers a client sends are removed or overwritten", func(t *testing.T) {
			// The chat route names no tool: the gateway must drop the
			// client's X-Agentauthz-Tool rather than pass it on.
			through(t, passes, "POST", "/agents/chubes-bot/chat", "", bearer(chatOnly.Token),
				header("X-Agentauthz-Agent", "acme-bot"), header("X-Agentauthz-Owner", "root"),
				header("X-Agentauthz-Decision-Id", "forged"), header("X-Agentauthz-Action", "manage_flows"),
				header("X-Agentauthz-Tool", "shell"))
			wantUpstreamIdentity(t, up, "POST", "/agents/chubes-bot/chat", "", "chat", "")
		})
		t.Run("a denied request gets 403 and never reaches the upstream", func(t *testing.T) {
			// chatOnly lacks datamachine_use_tools (token_ceiling); the
			// agent's tool policy allows only web_search (tool_policy).
			for _, c := range []struct {
				tok, path, layer string
			}{
				{chatOnly.Token, "/agents/chubes-bot/tools/web_search", "token_ceiling"},
				{full.Token, "/agents/chubes-bot/tools/shell", "tool_policy"},
			} {
				r := through(t, stops(http.StatusForbidden), "POST", c.path, "", bearer(c.tok))
				if !kind.errorBodies {
					continue
				}
				if e := r.apiError(t); e.Error.Code != "forbidden" || !contains(e.Error.DeniedBy, c.layer) {
					t.Errorf("POST %s: error %+v, want forbidden denied_by %s passed on by %s", c.path, e.Error, c.layer, kind.name)
				}
			}
		})
		t.Run("original-request headers a client sends are overwritten", func(t *testing.T) {
			through(t, stops(http.StatusForbidden), "POST", "/agents/chubes-bot/tools/web_search", "", bearer(chatOnly.Token),
				header(kind.originalMethod, "POST"), header(kind.originalURI, "/agents/chubes-bot/chat"))
		})
		t.Run("no token or a bad one gets 401 and never reaches the upstream", func(t *testing.T) {
			r := through(t, stops(http.StatusUnauthorized), "POST", "/agents/chubes-bot/chat", "")
			if h := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
				t.Errorf("WWW-Authenticate %q, want agentauthz's Bearer challenge passed on by %s", h, kind.name)
			}
			through(t, stops(http.StatusUnauthorized), "POST", "/agents/chubes-bot/chat", "", bearer("datamachine_chubes-bot_not-a-token"))
		})
		t.Run("a path with no route gets 403 and never reaches the upstream", func(t *testing.T) {
			through(t, stops(http.StatusForbidden), "GET", "/agents/chubes-bot/secrets", "", bearer(full.Token))
			through(t, stops(http.StatusForbidden), "DELETE", "/agents/chubes-bot/chat", "", bearer(full.Token)) // a method outside the table
			through(t, stops(http.StatusForbidden), "GET", "/", "", bearer(full.Token))
		})
		t.Run("a path agentauthz cannot interpret is refused and never reaches the upstream", func(t *testing.T) {
			for _, path := range []string{
				"/agents/chubes-bot/tools/web_search%2F..%2Fshell", // an encoded slash
				"/agents/chubes-bot/tools/%2e%2e",                  // an encoded dot segment
			} {
				r := through(t, stops(kind.refusedStatus), "POST", path, "", bearer(full.Token))
				if kind.errorBodies && r.apiError(t).Error.Code != "invalid_original_request" {
					t.Errorf("POST %s: %s, want invalid_original_request", path, r.body)
				}
			}
		})
		t.Run("a revoked token stops at the next request", func(t *testing.T) {
			tok := mintCLI(t, db, "chubes-bot")
			through(t, passes, "POST", "/agents/chubes-bot/chat", "", bearer(tok.Token)) // now cached
			srv.do(t, "DELETE", "/v1/agents/chubes-bot/tokens/"+itoa(tok.ID), nil, bearer(tok.Token)).want(t, http.StatusOK)
			through(t, stops(http.StatusUnauthorized), "POST", "/agents/chubes-bot/chat", "", bearer(tok.Token))
			through(t, passes, "POST", "/agents/chubes-bot/chat", "", bearer(full.Token)) // the others still pass
		})
		t.Run("trusted by agentauthz, the gateway strips the client's identity headers", func(t *testing.T) {
			checkTrustedGatewayStripsIdentity(t, db, bin, kind.start)
		})
	})
}

// passage is what one request through a gateway must come to: the status
// the client gets and how many requests reach the upstream because of it.
type passage struct {
	status int
	hits   int
}

// passes is a request that reaches the upstream once and gets its 200.
var passes = passage{http.StatusOK, 1}

// stops is a request that gets status from the gateway and never reaches the
// upstream.
func stops(status int) passage { return passage{status, 0} }

// check sends one request through g and says how it differs from p: the
// upstream's hit count, the status, and whether the answer came from the
// upstream. It returns an error rather than failing t, so that a test can
// show that a check fails.
func (p passage) check(t *testing.T, g *gateway, up *upstream, method, path, body string, opts ...reqOpt) (*response, error) {
	t.Helper()
	before := up.hits()
	r := g.do(t, method, path, body, opts...)
	var problems []string
	if got := up.hits() - before; got != p.hits {
		problems = append(problems, fmt.Sprintf("%d request(s) reached the upstream, want %d", got, p.hits))
	}
	if r.status != p.status {
		problems = append(problems, fmt.Sprintf("status %d, want %d", r.status, p.status))
	}
	if reached := r.header.Get(upstreamHeader) != ""; reached != (p.hits > 0) {
		problems = append(problems, fmt.Sprintf("the answer came from the upstream: %v, want %v", reached, p.hits > 0))
	}
	if len(problems) > 0 {
		return r, fmt.Errorf("%s %s through %s: %s; body: %s", method, path, g.name, strings.Join(problems, "; "), r.body)
	}
	return r, nil
}
