package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// Real nginx (Debian's package, auth_request) runs the README's
// forward-auth example in front of a recording upstream: only what
// agentauthz allows reaches the upstream, with the identity headers nginx
// copies from the check's answer; a denial, a missing or revoked credential
// and a path outside the route table stop at nginx. Every step counts the
// upstream's hits exactly.
func TestNginxForwardAuthGateway(t *testing.T) {
	t.Parallel()
	bin := nginxBinary(t)
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		// No --trusted-proxies here (the last step trusts nginx with a
		// server of its own). An hour of cache: the revocation below must
		// evict, not expire.
		srv := startServer(t, db, "--cache-ttl=1h")
		up := newUpstream(t)
		gw := startNginx(t, bin, srv.base, up)

		full := mintCLI(t, db, "chubes-bot")
		chatOnly := mintCLI(t, db, "chubes-bot", `--capabilities=["datamachine_chat"]`)

		// through sends one request through nginx and checks its status and
		// how many requests reached the upstream because of it.
		through := func(t *testing.T, wantStatus, wantHits int, method, path, body string, opts ...reqOpt) *response {
			t.Helper()
			r, err := passage{wantStatus, wantHits}.check(t, gw, up, method, path, body, opts...)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		t.Run("an allowed request reaches the upstream with the agent's identity", func(t *testing.T) {
			r := through(t, http.StatusOK, 1, "POST", "/agents/chubes-bot/chat?stream=1", `{"message":"hi"}`, bearer(full.Token))
			if want := "upstream answered POST /agents/chubes-bot/chat?stream=1"; string(r.body) != want {
				t.Errorf("body %q, want the upstream's answer %q", r.body, want)
			}
			wantUpstreamIdentity(t, up, "POST", "/agents/chubes-bot/chat?stream=1", `{"message":"hi"}`, "chat", "")
			through(t, http.StatusOK, 1, "POST", "/agents/chubes-bot/tools/web_search", "", bearer(full.Token))
			wantUpstreamIdentity(t, up, "POST", "/agents/chubes-bot/tools/web_search", "", "use_tools", "web_search")
			through(t, http.StatusOK, 1, "POST", "/agents/chubes-bot/chat", "", bearer(chatOnly.Token))
			wantUpstreamIdentity(t, up, "POST", "/agents/chubes-bot/chat", "", "chat", "")
		})
		t.Run("identity headers a client sends are removed or overwritten", func(t *testing.T) {
			// The chat route names no tool: nginx must drop the client's
			// X-Agentauthz-Tool rather than pass it on.
			through(t, http.StatusOK, 1, "POST", "/agents/chubes-bot/chat", "", bearer(chatOnly.Token),
				header("X-Agentauthz-Agent", "acme-bot"), header("X-Agentauthz-Owner", "root"),
				header("X-Agentauthz-Decision-Id", "forged"), header("X-Agentauthz-Action", "manage_flows"),
				header("X-Agentauthz-Tool", "shell"))
			wantUpstreamIdentity(t, up, "POST", "/agents/chubes-bot/chat", "", "chat", "")
		})
		t.Run("a denied request gets 403 and never reaches the upstream", func(t *testing.T) {
			// chatOnly lacks datamachine_use_tools (token_ceiling).
			through(t, http.StatusForbidden, 0, "POST", "/agents/chubes-bot/tools/web_search", "", bearer(chatOnly.Token))
			// The agent's tool policy allows only web_search (tool_policy).
			through(t, http.StatusForbidden, 0, "POST", "/agents/chubes-bot/tools/shell", "", bearer(full.Token))
		})
		t.Run("original-request headers a client sends are overwritten", func(t *testing.T) {
			through(t, http.StatusForbidden, 0, "POST", "/agents/chubes-bot/tools/web_search", "", bearer(chatOnly.Token),
				header("X-Original-Method", "POST"), header("X-Original-URI", "/agents/chubes-bot/chat"))
		})
		t.Run("no token gets 401 and never reaches the upstream", func(t *testing.T) {
			r := through(t, http.StatusUnauthorized, 0, "POST", "/agents/chubes-bot/chat", "")
			if h := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
				t.Errorf("WWW-Authenticate %q, want agentauthz's Bearer challenge passed on by nginx", h)
			}
			through(t, http.StatusUnauthorized, 0, "POST", "/agents/chubes-bot/chat", "", bearer("datamachine_chubes-bot_not-a-token"))
		})
		t.Run("a path with no route gets 403 and never reaches the upstream", func(t *testing.T) {
			through(t, http.StatusForbidden, 0, "GET", "/agents/chubes-bot/secrets", "", bearer(full.Token))
			through(t, http.StatusForbidden, 0, "DELETE", "/agents/chubes-bot/chat", "", bearer(full.Token)) // a method outside the table
			through(t, http.StatusForbidden, 0, "GET", "/", "", bearer(full.Token))
		})
		t.Run("a revoked token stops at once", func(t *testing.T) {
			tok := mintCLI(t, db, "chubes-bot")
			through(t, http.StatusOK, 1, "POST", "/agents/chubes-bot/chat", "", bearer(tok.Token)) // now cached
			srv.do(t, "DELETE", "/v1/agents/chubes-bot/tokens/"+itoa(tok.ID), nil, bearer(tok.Token)).want(t, http.StatusOK)
			through(t, http.StatusUnauthorized, 0, "POST", "/agents/chubes-bot/chat", "", bearer(tok.Token))
			through(t, http.StatusOK, 1, "POST", "/agents/chubes-bot/chat", "", bearer(full.Token)) // the others still pass
		})
		t.Run("trusted by agentauthz, nginx strips the client's identity headers", func(t *testing.T) {
			checkTrustedGatewayStripsIdentity(t, db, bin, startNginx)
		})
	})
}

// The checks above can fail: with auth_request pointed at an authorizer
// that answers 200 to everything, the denial check reports the request that
// got through.
func TestNginxForwardAuthGatewayCheckCatchesAnAlways200Authorizer(t *testing.T) {
	t.Parallel()
	checkCatchesAnAlways200Authorizer(t, nginxBinary(t), startNginx)
}
