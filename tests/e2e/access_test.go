package e2e

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
)

// agentRoles maps an agent slug to the caller's role on it.
type agentRoles map[string]string

// listed is GET /v1/agents for the caller: slug → role.
func (s *server) listed(t *testing.T, minimumRole string, opts ...reqOpt) agentRoles {
	t.Helper()
	path := "/v1/agents"
	if minimumRole != "" {
		path += "?minimum_role=" + url.QueryEscape(minimumRole)
	}
	var out struct {
		Agents []struct {
			Slug string  `json:"agent_slug"`
			Role *string `json:"role"`
		} `json:"agents"`
		NextAfter *int64 `json:"next_after"`
	}
	s.do(t, "GET", path, nil, opts...).want(t, 200).decode(t, &out)
	if out.NextAfter != nil {
		t.Fatalf("GET %s paged (next_after %d); the world is smaller than a page", path, *out.NextAfter)
	}
	got := agentRoles{}
	for _, a := range out.Agents {
		role := ""
		if a.Role != nil {
			role = *a.Role
		}
		got[a.Slug] = role
	}
	return got
}

// access is GET /v1/agents/{agent}/access for the caller.
func (s *server) access(t *testing.T, agent, minimumRole string, opts ...reqOpt) (allowed bool, role string) {
	t.Helper()
	path := "/v1/agents/" + agent + "/access"
	if minimumRole != "" {
		path += "?minimum_role=" + url.QueryEscape(minimumRole)
	}
	var out struct {
		Allowed bool    `json:"allowed"`
		Role    *string `json:"role"`
	}
	s.do(t, "GET", path, nil, opts...).want(t, 200).decode(t, &out)
	if out.Role != nil {
		role = *out.Role
	}
	return out.Allowed, role
}

func (r agentRoles) String() string {
	var parts []string
	for slug, role := range r {
		parts = append(parts, slug+"="+role)
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, " ") + "}"
}

func sameRoles(a, b agentRoles) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// agreeOnEveryAgent checks that can-access answers allowed, with the same
// role, for exactly the agents the listing returned.
func agreeOnEveryAgent(t *testing.T, srv *server, w world, minimumRole string, listed agentRoles, opts ...reqOpt) {
	t.Helper()
	for _, slug := range w.agents {
		allowed, role := srv.access(t, slug, minimumRole, opts...)
		wantRole, inList := listed[slug]
		if allowed != inList {
			t.Errorf("%s (minimum_role %q): can-access says allowed=%t, list-accessible says listed=%t", slug, minimumRole, allowed, inList)
		}
		if inList && role != wantRole {
			t.Errorf("%s: can-access role %q, listing role %q", slug, role, wantRole)
		}
	}
}

func TestAudienceFromTrustedProxySeesExactlyItsGrantsAndThePublicOnes(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		w := seedWorld(t, db)
		srv := startServer(t, db, "--trusted-proxies=127.0.0.1/32")
		acme := asAudience("acme")
		// audience:acme holds acme-bot (operator) and carol-bot (viewer);
		// every caller also holds audience:public's chubes-bot (viewer).
		want := agentRoles{"acme-bot": "operator", "carol-bot": "viewer", "chubes-bot": "viewer"}
		got := srv.listed(t, "", acme)
		if !sameRoles(got, want) {
			t.Errorf("audience:acme lists %v, want %v", got, want)
		}
		agreeOnEveryAgent(t, srv, w, "", got, acme)
		if allowed, _ := srv.access(t, "acme-bot", "admin", acme); allowed {
			t.Errorf("audience:acme is admin on acme-bot; its grant is operator")
		}
	})
}

func TestAudienceHeadersFromAnUntrustedAddressAreIgnored(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		srv := startServer(t, db, "--trusted-proxies=10.0.0.0/8") // not us
		var who whoamiView
		srv.do(t, "GET", "/v1/whoami", nil, asAudience("acme"), asUser("root")).want(t, 200).decode(t, &who)
		if who.Principal.Kind != "anonymous" {
			t.Errorf("whoami from an untrusted address with proxy headers: %+v, want anonymous", who.Principal)
		}
		if got, want := srv.listed(t, "", asAudience("acme")), (agentRoles{"chubes-bot": "viewer"}); !sameRoles(got, want) {
			t.Errorf("lists %v, want only the public grants %v", got, want)
		}
	})
}

func TestAnonymousCallerSeesOnlyPublicGrants(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		w := seedWorld(t, db)
		srv := startServer(t, db)
		got := srv.listed(t, "")
		if want := (agentRoles{"chubes-bot": "viewer"}); !sameRoles(got, want) {
			t.Errorf("anonymous lists %v, want %v", got, want)
		}
		agreeOnEveryAgent(t, srv, w, "", got)
	})
}

func TestAnonymousDisabledAnswers401ToUnauthenticatedCallers(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		srv := startServer(t, db, "--anonymous=false")
		for _, path := range []string{"/v1/agents", "/v1/whoami", "/v1/agents/chubes-bot/access"} {
			r := srv.do(t, "GET", path, nil).want(t, http.StatusUnauthorized)
			if e := r.apiError(t); e.Error.Code != "authentication_required" {
				t.Errorf("GET %s: code %q, want authentication_required", path, e.Error.Code)
			}
		}
		tok := mintCLI(t, db, "chubes-bot")
		srv.do(t, "GET", "/v1/agents", nil, bearer(tok.Token)).want(t, 200)
	})
}

func TestListAccessibleAndCanAccessAgreeForEveryPrincipalAndAgent(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		w := seedWorld(t, db)
		srv := startServer(t, db, "--trusted-proxies=127.0.0.1/32")
		tok := mintCLI(t, db, "chubes-bot")
		all := agentRoles{"chubes-bot": "admin", "acme-bot": "admin", "chubes-private": "admin", "carol-bot": "admin"}
		principals := []struct {
			name string
			opts []reqOpt
			want agentRoles // at the default minimum role (viewer)
		}{
			{"anonymous", nil, agentRoles{"chubes-bot": "viewer"}},
			{"audience:acme", []reqOpt{asAudience("acme")}, agentRoles{"acme-bot": "operator", "carol-bot": "viewer", "chubes-bot": "viewer"}},
			{"user:sam (operator grant)", []reqOpt{asUser("sam")}, agentRoles{"chubes-bot": "operator"}},
			{"user:sam with audience acme", []reqOpt{asUser("sam"), asAudience("acme")}, agentRoles{"chubes-bot": "operator", "acme-bot": "operator", "carol-bot": "viewer"}},
			{"user:carol (owner, viewer grant)", []reqOpt{asUser("carol")}, agentRoles{"carol-bot": "admin", "chubes-bot": "viewer"}},
			{"user:chubes (owner)", []reqOpt{asUser("chubes")}, agentRoles{"chubes-bot": "admin", "acme-bot": "admin", "chubes-private": "admin"}},
			{"user:root (site administrator)", []reqOpt{asUser("root")}, all},
			// token_reach "agent": a token holds a role on its own agent only.
			{"token of chubes-bot", []reqOpt{bearer(tok.Token)}, agentRoles{"chubes-bot": "admin"}},
		}
		for _, p := range principals {
			t.Run(p.name, func(t *testing.T) {
				if got := srv.listed(t, "", p.opts...); !sameRoles(got, p.want) {
					t.Errorf("lists %v, want %v", got, p.want)
				}
				for _, min := range []string{"", "viewer", "operator", "admin"} {
					agreeOnEveryAgent(t, srv, w, min, srv.listed(t, min, p.opts...), p.opts...)
				}
			})
		}
	})
}

func TestOperatorGrantListsTokensButCannotCreateOrRevokeThem(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		srv := startServer(t, db, "--trusted-proxies=127.0.0.1/32")
		tok := mintCLI(t, db, "chubes-bot")
		before := tokenCount(t, db, "chubes-bot")

		t.Run("an operator lists tokens", func(t *testing.T) {
			srv.do(t, "GET", "/v1/agents/chubes-bot/tokens", nil, asUser("sam")).want(t, 200)
		})
		t.Run("an operator cannot create a token", func(t *testing.T) {
			r := srv.do(t, "POST", "/v1/agents/chubes-bot/tokens", map[string]any{"label": "x"}, asUser("sam")).want(t, http.StatusForbidden)
			if e := r.apiError(t); !contains(e.Error.DeniedBy, "agent_role") {
				t.Errorf("denied_by %v, want agent_role", e.Error.DeniedBy)
			}
		})
		t.Run("an operator cannot revoke a token", func(t *testing.T) {
			srv.do(t, "DELETE", "/v1/agents/chubes-bot/tokens/"+itoa(tok.ID), nil, asUser("sam")).want(t, http.StatusForbidden)
			srv.do(t, "GET", "/v1/whoami", nil, bearer(tok.Token)).want(t, 200)
		})
		t.Run("a viewer sees the agent but not its tokens", func(t *testing.T) {
			srv.do(t, "GET", "/v1/agents/chubes-bot", nil, asUser("carol")).want(t, 200)
			if allowed, role := srv.access(t, "chubes-bot", "", asUser("carol")); !allowed || role != "viewer" {
				t.Errorf("carol's access: allowed=%t role=%q, want viewer", allowed, role)
			}
			srv.do(t, "GET", "/v1/agents/chubes-bot/tokens", nil, asUser("carol")).want(t, http.StatusForbidden)
		})
		if after := tokenCount(t, db, "chubes-bot"); after != before {
			t.Errorf("token count %d → %d after refused writes", before, after)
		}
	})
}
