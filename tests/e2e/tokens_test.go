package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// whoamiView is the part of GET /v1/whoami these tests read.
type whoamiView struct {
	Principal struct {
		Kind string `json:"kind"`
		ID   string `json:"id"`
	} `json:"principal"`
	User *struct {
		Login string `json:"login"`
	} `json:"user"`
	Agent *struct {
		Slug string `json:"agent_slug"`
	} `json:"agent"`
	Capabilities []string `json:"capabilities"`
}

func TestOwnerIssuesTokensThatActWithinThreeCeilings(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		srv := startServer(t, db, "--trusted-proxies=127.0.0.1/32")

		fromCLI := mintCLI(t, db, "chubes-bot", "--label=kimaki-prod")
		var fromHTTP createdToken
		srv.do(t, "POST", "/v1/agents/chubes-bot/tokens", map[string]any{"label": "ci"}, asUser("chubes")).
			want(t, http.StatusCreated).decode(t, &fromHTTP)
		if !strings.HasPrefix(fromHTTP.Token, "datamachine_chubes-bot_") || fromHTTP.Warning == "" {
			t.Fatalf("HTTP create answered %+v: want a datamachine_chubes-bot_ token and a save warning", fromHTTP)
		}
		restricted := mintCLI(t, db, "chubes-bot", `--capabilities=["datamachine_chat"]`)

		t.Run("a token acts as its agent on behalf of the owner", func(t *testing.T) {
			for _, tok := range []createdToken{fromCLI, fromHTTP} {
				var w whoamiView
				srv.do(t, "GET", "/v1/whoami", nil, bearer(tok.Token)).want(t, 200).decode(t, &w)
				if w.Principal.Kind != "token" || w.User == nil || w.User.Login != "chubes" || w.Agent == nil || w.Agent.Slug != "chubes-bot" {
					t.Errorf("whoami of token %d = %+v, want a token of chubes-bot acting for chubes", tok.ID, w)
				}
			}
		})
		t.Run("a full-ceiling token lists its agent's tokens, never their secrets", func(t *testing.T) {
			r := srv.do(t, "GET", "/v1/agents/chubes-bot/tokens", nil, bearer(fromHTTP.Token)).want(t, 200)
			var out struct {
				Tokens []createdToken `json:"tokens"`
			}
			r.decode(t, &out)
			if len(out.Tokens) != 3 {
				t.Errorf("listed %d tokens, want 3", len(out.Tokens))
			}
			for _, secret := range []string{fromCLI.Token, fromHTTP.Token, restricted.Token} {
				if strings.Contains(string(r.body), secret) {
					t.Errorf("the token list carries a raw token")
				}
			}
		})
		t.Run("an allowed tool within every ceiling is allowed", func(t *testing.T) {
			for _, tok := range []createdToken{fromCLI, fromHTTP} {
				if d := srv.authorize(t, tok.Token, "use_tools", "web_search"); !d.Allow {
					t.Errorf("token %d use_tools web_search: %+v, want allow", tok.ID, d)
				}
			}
		})
		t.Run("a tool outside the agent's tool policy is denied by tool_policy", func(t *testing.T) {
			d := srv.authorize(t, fromCLI.Token, "use_tools", "shell")
			if d.Allow || !contains(d.DeniedBy, "tool_policy") {
				t.Errorf("use_tools shell: %+v, want deny by tool_policy", d)
			}
		})
		t.Run("a restricted token is denied beyond its capabilities by token_ceiling", func(t *testing.T) {
			if d := srv.authorize(t, restricted.Token, "chat", ""); !d.Allow {
				t.Errorf("restricted token chat: %+v, want allow", d)
			}
			d := srv.authorize(t, restricted.Token, "use_tools", "web_search")
			if d.Allow || !contains(d.DeniedBy, "token_ceiling") {
				t.Errorf("restricted token use_tools: %+v, want deny by token_ceiling", d)
			}
		})
		t.Run("a token never exceeds its owner: owner_ceiling", func(t *testing.T) {
			// carol is a contributor: chat and read, no tools. Neither her
			// owner-ceiling token nor one that names the capability may use tools.
			plain := mintCLI(t, db, "carol-bot")
			named := mintCLI(t, db, "carol-bot", `--capabilities=["datamachine_use_tools"]`)
			for _, tok := range []createdToken{plain, named} {
				d := srv.authorize(t, tok.Token, "use_tools", "web_search")
				if d.Allow || !contains(d.DeniedBy, "owner_ceiling") {
					t.Errorf("carol's token %d use_tools: %+v, want deny by owner_ceiling", tok.ID, d)
				}
			}
		})
	})
}

// wantInvalidToken asserts the 401 of a refused bearer token.
func wantInvalidToken(t *testing.T, r *response, reason string) {
	t.Helper()
	r.want(t, http.StatusUnauthorized)
	if h := r.header.Get("WWW-Authenticate"); !strings.Contains(h, "invalid_token") {
		t.Errorf("%s %s: WWW-Authenticate %q, want a Bearer challenge with invalid_token", r.method, r.path, h)
	}
	if e := r.apiError(t); e.Error.Code != "invalid_token" || !strings.Contains(e.Error.Message, reason) {
		t.Errorf("%s %s: error %+v, want invalid_token naming %q", r.method, r.path, e.Error, reason)
	}
}

func TestTokenRevokedOverHTTPIsRefusedOnTheVeryNextRequestDespiteALongCacheTTL(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		// An hour of cache: only the server's own eviction can make this pass.
		srv := startServer(t, db, "--trusted-proxies=127.0.0.1/32", "--cache-ttl=1h")
		tok := mintCLI(t, db, "chubes-bot")
		srv.do(t, "GET", "/v1/whoami", nil, bearer(tok.Token)).want(t, 200) // now cached
		if d := srv.authorize(t, tok.Token, "use_tools", "web_search"); !d.Allow {
			t.Fatalf("before revocation: %+v, want allow", d)
		}
		var revoked createdToken
		srv.do(t, "DELETE", "/v1/agents/chubes-bot/tokens/"+itoa(tok.ID), nil, asUser("chubes")).want(t, 200).decode(t, &revoked)
		if revoked.RevokedAt == nil {
			t.Errorf("revoke answered %+v, want revoked_at set", revoked)
		}
		wantInvalidToken(t, srv.do(t, "POST", "/v1/authorize", map[string]string{"action": "use_tools", "tool": "web_search"}, bearer(tok.Token)), "revoked")
		wantInvalidToken(t, srv.do(t, "GET", "/v1/whoami", nil, bearer(tok.Token)), "revoked")
	})
}

func TestTokenRevokedByTheCLIIsRefusedOnTheVeryNextRequestWithoutATokenCache(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		// The CLI is another process: the server learns of its change within
		// --cache-ttl. With the cache off (0) that is the very next request.
		srv := startServer(t, db, "--cache-ttl=0")
		tok := mintCLI(t, db, "chubes-bot")
		srv.do(t, "GET", "/v1/whoami", nil, bearer(tok.Token)).want(t, 200)
		cliJSON(t, db, nil, "agents", "token", "revoke", "chubes-bot", itoa(tok.ID))
		wantInvalidToken(t, srv.do(t, "GET", "/v1/whoami", nil, bearer(tok.Token)), "revoked")
		wantInvalidToken(t, srv.do(t, "POST", "/v1/authorize", map[string]string{"action": "chat"}, bearer(tok.Token)), "revoked")
	})
}

func TestExpiredTokenIsRefusedEvenWhenCached(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		// A long cache TTL: a cached token must still die at expires_at.
		srv := startServer(t, db, "--trusted-proxies=127.0.0.1/32", "--cache-ttl=1h")
		var tok createdToken
		srv.do(t, "POST", "/v1/agents/chubes-bot/tokens", map[string]any{"expires_in": 1}, asUser("chubes")).
			want(t, http.StatusCreated).decode(t, &tok)
		if tok.ExpiresAt == nil {
			t.Fatalf("expires_in=1 gave no expires_at: %+v", tok)
		}
		// Expiry is wall-clock: poll (bounded) until the token is refused.
		// Before that every answer must be 200; after expires_at + 3 s of
		// slack (second-granular timestamps, scheduling) it must be refused.
		deadline := tok.ExpiresAt.Add(3 * time.Second)
		for {
			r := srv.do(t, "GET", "/v1/whoami", nil, bearer(tok.Token))
			if r.status == http.StatusUnauthorized {
				wantInvalidToken(t, r, "expired")
				if now := time.Now(); now.Before(tok.ExpiresAt.Add(-time.Second)) {
					t.Errorf("refused at %s, well before expires_at %s", now, tok.ExpiresAt)
				}
				break
			}
			r.want(t, 200)
			if time.Now().After(deadline) {
				t.Fatalf("token expiring at %s still accepted at %s", tok.ExpiresAt, time.Now())
			}
			time.Sleep(50 * time.Millisecond) // poll interval of a bounded loop
		}
		wantInvalidToken(t, srv.do(t, "POST", "/v1/authorize", map[string]string{"action": "chat"}, bearer(tok.Token)), "expired")
	})
}

func TestTokenOfAnInactiveAgentIsForbidden(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		// The status changes through the CLI, another process: cache off.
		srv := startServer(t, db, "--cache-ttl=0")
		tok := mintCLI(t, db, "chubes-bot")
		srv.do(t, "GET", "/v1/whoami", nil, bearer(tok.Token)).want(t, 200)

		cliJSON(t, db, nil, "agents", "update", "chubes-bot", "--status=inactive")
		for _, r := range []*response{
			srv.do(t, "GET", "/v1/whoami", nil, bearer(tok.Token)),
			srv.do(t, "POST", "/v1/authorize", map[string]string{"action": "chat"}, bearer(tok.Token)),
		} {
			r.want(t, http.StatusForbidden)
			if e := r.apiError(t); e.Error.Code != "agent_inactive" {
				t.Errorf("%s %s: code %q, want agent_inactive", r.method, r.path, e.Error.Code)
			}
		}

		cliJSON(t, db, nil, "agents", "update", "chubes-bot", "--status=active")
		srv.do(t, "GET", "/v1/whoami", nil, bearer(tok.Token)).want(t, 200)
	})
}

func TestRestrictedTokenCannotMintAWiderToken(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		srv := startServer(t, db)
		chatOnly := mintCLI(t, db, "chubes-bot", `--capabilities=["datamachine_chat"]`)
		chatRead := mintCLI(t, db, "chubes-bot", `--capabilities=["datamachine_chat","read"]`)

		t.Run("a wider mint is refused by mint_ceiling and writes nothing", func(t *testing.T) {
			for _, c := range []struct {
				minter createdToken
				body   map[string]any
			}{
				{chatOnly, map[string]any{}}, // null = the owner's ceiling
				{chatOnly, map[string]any{"capabilities": []string{"datamachine_chat", "datamachine_use_tools"}}},
				{chatRead, map[string]any{}},
				{chatRead, map[string]any{"capabilities": []string{"datamachine_use_tools"}}},
			} {
				before := tokenCount(t, db, "chubes-bot")
				r := srv.do(t, "POST", "/v1/agents/chubes-bot/tokens", c.body, bearer(c.minter.Token)).want(t, http.StatusForbidden)
				if e := r.apiError(t); !contains(e.Error.DeniedBy, "mint_ceiling") {
					t.Errorf("token %d minting %v: denied_by %v, want mint_ceiling", c.minter.ID, c.body, e.Error.DeniedBy)
				}
				if after := tokenCount(t, db, "chubes-bot"); after != before {
					t.Errorf("token count %d → %d after a refused mint", before, after)
				}
			}
		})
		t.Run("a chat-only token holds no management capability at all", func(t *testing.T) {
			// create-agent-token needs "read"; the chat-only token lacks it,
			// so even an equal mint is refused (token_ceiling).
			r := srv.do(t, "POST", "/v1/agents/chubes-bot/tokens", map[string]any{"capabilities": []string{"datamachine_chat"}}, bearer(chatOnly.Token)).
				want(t, http.StatusForbidden)
			if e := r.apiError(t); !contains(e.Error.DeniedBy, "token_ceiling") {
				t.Errorf("denied_by %v, want token_ceiling", e.Error.DeniedBy)
			}
			if d := srv.authorize(t, chatOnly.Token, "chat", ""); !d.Allow {
				t.Errorf("the chat-only token can no longer chat: %+v", d)
			}
		})
		t.Run("a token may mint a token no wider than itself", func(t *testing.T) {
			var narrow createdToken
			srv.do(t, "POST", "/v1/agents/chubes-bot/tokens", map[string]any{"capabilities": []string{"datamachine_chat"}}, bearer(chatRead.Token)).
				want(t, http.StatusCreated).decode(t, &narrow)
			if d := srv.authorize(t, narrow.Token, "chat", ""); !d.Allow {
				t.Errorf("the minted token cannot chat: %+v", d)
			}
		})
	})
}

func TestConcurrentTokenCreationsYieldDistinctWorkingTokens(t *testing.T) {
	t.Parallel()
	const n = 64
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		srv := startServer(t, db, "--trusted-proxies=127.0.0.1/32")
		type result struct {
			status int
			tok    createdToken
			body   string
		}
		results := make(chan result, n)
		for i := 0; i < n; i++ {
			go func() {
				// t.Fatal must not run off the test goroutine: report instead.
				req, _ := http.NewRequest("POST", srv.base+"/v1/agents/chubes-bot/tokens", strings.NewReader(`{"label":"burst"}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Forwarded-User", "chubes")
				resp, err := srv.client.Do(req)
				if err != nil {
					results <- result{body: err.Error()}
					return
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				var ct createdToken
				if resp.StatusCode == http.StatusCreated {
					_ = json.Unmarshal(b, &ct)
				}
				results <- result{status: resp.StatusCode, tok: ct, body: string(b)}
			}()
		}
		tokens, ids := map[string]bool{}, map[int64]bool{}
		var created []createdToken
		for i := 0; i < n; i++ {
			r := <-results
			if r.status != http.StatusCreated {
				t.Errorf("concurrent create: status %d: %s", r.status, r.body)
				continue
			}
			if tokens[r.tok.Token] || ids[r.tok.ID] {
				t.Errorf("duplicate token or id %d", r.tok.ID)
			}
			tokens[r.tok.Token], ids[r.tok.ID] = true, true
			created = append(created, r.tok)
		}
		if len(created) != n {
			t.Fatalf("%d of %d concurrent creations succeeded", len(created), n)
		}
		for _, tok := range created {
			srv.do(t, "GET", "/v1/whoami", nil, bearer(tok.Token)).want(t, 200)
		}
		if got := tokenCount(t, db, "chubes-bot"); got != n {
			t.Errorf("the store lists %d tokens, want %d", got, n)
		}
	})
}
