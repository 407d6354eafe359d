package e2e

import (
	"net/http"
	"testing"
)

// The ceilings hold through the management abilities: each case is one of
// the escalations an attacker found on the first wave, replayed over HTTP
// on both stores. Every refusal is a 403 naming the layer, and writes
// nothing.

// agentView is the part of an agent these tests read.
type agentView struct {
	Slug       string `json:"agent_slug"`
	Status     string `json:"status"`
	ToolPolicy *struct {
		Mode  string   `json:"mode"`
		Tools []string `json:"tools"`
	} `json:"tool_policy"`
}

// grantsOf lists the grant rows of an agent, as the operator sees them.
func grantsOf(t *testing.T, db, agent string) string {
	t.Helper()
	r := cli(t, db, "agents", "access", "list", agent, "--format=json")
	if r.code != 0 {
		t.Fatalf("access list %s: exit %d: %s", agent, r.code, r.stderr)
	}
	return r.stdout
}

func agentOf(t *testing.T, db, agent string) agentView {
	t.Helper()
	var a agentView
	cliJSON(t, db, &a, "agents", "show", agent)
	return a
}

// wantDenied asserts a 403 whose denied_by names every layer in layers.
func wantDenied(t *testing.T, r *response, layers ...string) {
	t.Helper()
	r.want(t, http.StatusForbidden)
	e := r.apiError(t)
	for _, l := range layers {
		if !contains(e.Error.DeniedBy, l) {
			t.Errorf("%s %s: denied_by %v, want %s among them (%s)", r.method, r.path, e.Error.DeniedBy, l, e.Error.Message)
		}
	}
}

func TestReadOnlyTokenCannotEscalateThroughManagement(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		srv := startServer(t, db, "--trusted-proxies=127.0.0.1/32")
		readOnly := mintCLI(t, db, "chubes-bot", `--capabilities=["read"]`)
		full := mintCLI(t, db, "chubes-bot")

		t.Run("a read token cannot grant audience:public admin", func(t *testing.T) {
			before := grantsOf(t, db, "chubes-bot")
			r := srv.do(t, "PUT", "/v1/agents/chubes-bot/grants/audience:public", map[string]string{"role": "admin"}, bearer(readOnly.Token))
			wantDenied(t, r, "grant_ceiling", "token_ceiling")
			if after := grantsOf(t, db, "chubes-bot"); after != before {
				t.Errorf("grants changed by a refused grant:\nbefore %s\nafter  %s", before, after)
			}
			var d decision
			srv.do(t, "POST", "/v1/authorize", map[string]string{"action": "use_tools", "tool": "web_search", "agent": "chubes-bot"}).
				want(t, 200).decode(t, &d)
			if d.Allow {
				t.Errorf("anonymous may use tools on chubes-bot: %+v", d)
			}
		})
		t.Run("a read token cannot clear the tool policy", func(t *testing.T) {
			r := srv.do(t, "PATCH", "/v1/agents/chubes-bot", map[string]any{"tool_policy": nil}, bearer(readOnly.Token))
			wantDenied(t, r, "token_ceiling", "tool_ceiling")
			if a := agentOf(t, db, "chubes-bot"); a.ToolPolicy == nil {
				t.Errorf("the tool policy was cleared by a refused update")
			}
		})
		t.Run("a token with tools cannot unlock a tool it is refused", func(t *testing.T) {
			tools := mintCLI(t, db, "chubes-bot", `--capabilities=["read","datamachine_chat","datamachine_use_tools","datamachine_manage_agents"]`)
			if d := srv.authorize(t, tools.Token, "use_tools", "shell"); d.Allow {
				t.Fatalf("shell allowed before any change: %+v", d)
			}
			r := srv.do(t, "PATCH", "/v1/agents/chubes-bot", map[string]any{"tool_policy": nil}, bearer(tools.Token))
			wantDenied(t, r, "tool_ceiling")
			r = srv.do(t, "PATCH", "/v1/agents/chubes-bot", map[string]any{"tool_policy": map[string]any{"mode": "allow", "tools": []string{"web_search", "shell"}}}, bearer(tools.Token))
			wantDenied(t, r, "tool_ceiling")
			if d := srv.authorize(t, tools.Token, "use_tools", "shell"); d.Allow {
				t.Errorf("shell allowed after refused updates: %+v", d)
			}
			// narrowing is its to do
			srv.do(t, "PATCH", "/v1/agents/chubes-bot", map[string]any{"tool_policy": map[string]any{"mode": "allow", "tools": []string{}}}, bearer(tools.Token)).want(t, 200)
			if d := srv.authorize(t, tools.Token, "use_tools", "web_search"); d.Allow || !contains(d.DeniedBy, "tool_policy") {
				t.Errorf("web_search after the token narrowed the policy: %+v, want deny by tool_policy", d)
			}
			srv.do(t, "PATCH", "/v1/agents/chubes-bot", map[string]any{"tool_policy": map[string]any{"mode": "allow", "tools": []string{"web_search"}}}, asUser("chubes")).want(t, 200)
		})
		t.Run("a read token cannot revoke the owner's token or delete the agent", func(t *testing.T) {
			r := srv.do(t, "DELETE", "/v1/agents/chubes-bot/tokens/"+itoa(full.ID), nil, bearer(readOnly.Token))
			wantDenied(t, r, "token_ceiling")
			if d := srv.authorize(t, full.Token, "chat", ""); !d.Allow {
				t.Errorf("the owner's token stopped working after a refused revoke: %+v", d)
			}
			wantDenied(t, srv.do(t, "DELETE", "/v1/agents/chubes-bot", nil, bearer(readOnly.Token)), "token_ceiling")
			agentOf(t, db, "chubes-bot") // still there
		})
		t.Run("a token may revoke itself", func(t *testing.T) {
			self := mintCLI(t, db, "chubes-bot", `--capabilities=["read"]`)
			srv.do(t, "DELETE", "/v1/agents/chubes-bot/tokens/"+itoa(self.ID), nil, bearer(self.Token)).want(t, 200)
			wantInvalidToken(t, srv.do(t, "GET", "/v1/whoami", nil, bearer(self.Token)), "revoked")
		})
		t.Run("an admin grantee may narrow but never widen or reactivate", func(t *testing.T) {
			// sam holds admin on acme-bot through a grant: the agent's tool
			// policy and status bind sam as they bind its tokens.
			srv.do(t, "PUT", "/v1/agents/acme-bot/grants/user:sam", map[string]string{"role": "admin"}, asUser("chubes")).want(t, 200, 201)
			srv.do(t, "PATCH", "/v1/agents/acme-bot", map[string]any{"tool_policy": map[string]any{"mode": "allow", "tools": []string{"web_search"}}}, asUser("chubes")).want(t, 200)
			srv.do(t, "PATCH", "/v1/agents/acme-bot", map[string]any{"tool_policy": map[string]any{"mode": "allow", "tools": []string{}}}, asUser("sam")).want(t, 200)
			wantDenied(t, srv.do(t, "PATCH", "/v1/agents/acme-bot", map[string]any{"tool_policy": nil}, asUser("sam")), "tool_ceiling")
			srv.do(t, "PATCH", "/v1/agents/acme-bot", map[string]any{"status": "inactive"}, asUser("sam")).want(t, 200)
			wantDenied(t, srv.do(t, "PATCH", "/v1/agents/acme-bot", map[string]any{"status": "active"}, asUser("sam")), "status_ceiling")
			if a := agentOf(t, db, "acme-bot"); a.Status != "inactive" || a.ToolPolicy == nil || len(a.ToolPolicy.Tools) != 0 {
				t.Errorf("acme-bot is %+v after refused changes", a)
			}
			// the owner governs its agent: it may do both
			srv.do(t, "PATCH", "/v1/agents/acme-bot", map[string]any{"status": "active", "tool_policy": nil}, asUser("chubes")).want(t, 200)
		})

	})
}

func TestExpiringTokenCannotMintATokenThatOutlivesIt(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		srv := startServer(t, db, "--cache-ttl=1h", "--trusted-proxies=127.0.0.1/32")
		parent := mintCLI(t, db, "chubes-bot", "--expires-in=30")

		before := tokenCount(t, db, "chubes-bot")
		wantDenied(t, srv.do(t, "POST", "/v1/agents/chubes-bot/tokens", map[string]any{"label": "forever"}, bearer(parent.Token)), "mint_lifetime")
		wantDenied(t, srv.do(t, "POST", "/v1/agents/chubes-bot/tokens", map[string]any{"expires_in": 3600}, bearer(parent.Token)), "mint_lifetime")
		if after := tokenCount(t, db, "chubes-bot"); after != before {
			t.Errorf("token count %d → %d after refused mints", before, after)
		}

		var child, grandchild createdToken
		srv.do(t, "POST", "/v1/agents/chubes-bot/tokens", map[string]any{"expires_in": 10}, bearer(parent.Token)).want(t, http.StatusCreated).decode(t, &child)
		srv.do(t, "POST", "/v1/agents/chubes-bot/tokens", map[string]any{"expires_in": 5}, bearer(child.Token)).want(t, http.StatusCreated).decode(t, &grandchild)
		for _, tok := range []createdToken{child, grandchild} {
			srv.do(t, "GET", "/v1/whoami", nil, bearer(tok.Token)).want(t, 200) // cached for an hour
		}
		srv.do(t, "DELETE", "/v1/agents/chubes-bot/tokens/"+itoa(parent.ID), nil, asUser("chubes")).want(t, 200)
		for _, tok := range []createdToken{parent, child, grandchild} {
			wantInvalidToken(t, srv.do(t, "GET", "/v1/whoami", nil, bearer(tok.Token)), "revoked")
		}
		var listed []struct {
			ID        int64   `json:"token_id"`
			ParentID  *int64  `json:"parent_token_id"`
			RevokedAt *string `json:"revoked_at"`
		}
		cliJSON(t, db, &listed, "agents", "token", "list", "chubes-bot")
		parents := map[int64]*int64{}
		for _, l := range listed {
			parents[l.ID] = l.ParentID
		}
		if p := parents[child.ID]; p == nil || *p != parent.ID {
			t.Errorf("child %d records parent %v, want %d", child.ID, p, parent.ID)
		}
		if p := parents[grandchild.ID]; p == nil || *p != child.ID {
			t.Errorf("grandchild %d records parent %v, want %d", grandchild.ID, p, child.ID)
		}
	})
}

func TestCallerWhoMayNotManageUsersCannotTellWhichLoginsExist(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		srv := startServer(t, db, "--trusted-proxies=127.0.0.1/32")
		for _, c := range []struct {
			name   string
			method string
			path   func(login string) string
			body   any
			opts   []reqOpt
		}{
			{"anonymous PATCH /v1/users", "PATCH", func(l string) string { return "/v1/users/" + l }, map[string]string{"name": "x"}, nil},
			{"sam PATCH /v1/users", "PATCH", func(l string) string { return "/v1/users/" + l }, map[string]string{"name": "x"}, []reqOpt{asUser("sam")}},
			{"anonymous PUT grant", "PUT", func(l string) string { return "/v1/agents/chubes-bot/grants/user:" + l }, map[string]string{"role": "viewer"}, nil},
			{"sam DELETE grant", "DELETE", func(l string) string { return "/v1/agents/chubes-bot/grants/user:" + l }, nil, []reqOpt{asUser("sam")}},
		} {
			t.Run(c.name, func(t *testing.T) {
				known := srv.do(t, c.method, c.path("carol"), c.body, c.opts...)
				unknown := srv.do(t, c.method, c.path("nobody-here"), c.body, c.opts...)
				if known.status != unknown.status || known.apiError(t).Error.Code != unknown.apiError(t).Error.Code {
					t.Errorf("existing login: %d %s; missing login: %d %s", known.status, known.body, unknown.status, unknown.body)
				}
				if known.status != http.StatusUnauthorized && known.status != http.StatusForbidden {
					t.Errorf("status %d, want 401 or 403: %s", known.status, known.body)
				}
			})
		}
		for _, as := range []struct {
			name string
			opts []reqOpt
		}{{"anonymous", nil}, {"sam", []reqOpt{asUser("sam")}}, {"chubes", []reqOpt{asUser("chubes")}}} {
			t.Run(as.name+" POST /v1/agents for another owner", func(t *testing.T) {
				known := srv.do(t, "POST", "/v1/agents", map[string]string{"slug": "probe-a", "owner": "carol"}, as.opts...)
				unknown := srv.do(t, "POST", "/v1/agents", map[string]string{"slug": "probe-b", "owner": "nobody-here"}, as.opts...)
				if known.status != unknown.status || known.apiError(t).Error.Code != unknown.apiError(t).Error.Code {
					t.Errorf("existing owner: %d %s; missing owner: %d %s", known.status, known.body, unknown.status, unknown.body)
				}
				if known.status != http.StatusUnauthorized && known.status != http.StatusForbidden {
					t.Errorf("status %d, want 401 or 403: %s", known.status, known.body)
				}
			})
		}
	})
}
