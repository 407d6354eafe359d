package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/token"
)

// corrupt flips the last hex digit of a raw token, breaking its checksum.
func corrupt(raw string) string {
	last := raw[len(raw)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return raw[:len(raw)-1] + string(repl)
}

func TestBearerTokenResolution(t *testing.T) {
	e := newEnv(t)
	unissued, err := token.Generate(token.DefaultPrefix, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		auth      []string // Authorization header values
		status    int
		code      string
		kind      string // principal kind on success
		challenge string // WWW-Authenticate must contain this
	}{
		{name: "no credentials resolve as anonymous", status: 200, kind: "anonymous"},
		{name: "a valid token resolves as the token principal", auth: []string{"Bearer " + e.alphaToken}, status: 200, kind: "token"},
		{name: "the bearer scheme is case-insensitive", auth: []string{"bEaReR " + e.alphaToken}, status: 200, kind: "token"},
		{name: "basic auth nobody understands is refused, never anonymous", auth: []string{"Basic dXNlcjpwYXNz"}, status: 401, code: "invalid_token"},
		{name: "a foreign bearer token is refused, never anonymous", auth: []string{"Bearer ghp_abcdef"}, status: 401, code: "invalid_token"},
		{name: "an empty bearer credential is rejected", auth: []string{"Bearer "}, status: 401, code: "invalid_token", challenge: `error="invalid_token"`},
		{name: "a bare bearer scheme is rejected", auth: []string{"Bearer"}, status: 401, code: "invalid_token", challenge: `error="invalid_token"`},
		{name: "a bad checksum is rejected and never falls back", auth: []string{"Bearer " + corrupt(e.alphaToken)}, status: 401, code: "invalid_token", challenge: `error="invalid_token"`},
		{name: "a truncated token is rejected", auth: []string{"Bearer " + e.alphaToken[:30]}, status: 401, code: "invalid_token", challenge: `error="invalid_token"`},
		{name: "an unknown well-formed token is rejected", auth: []string{"Bearer " + unissued}, status: 401, code: "invalid_token", challenge: `error="invalid_token"`},
		{name: "two credentials in one header are rejected", auth: []string{"Bearer " + e.alphaToken + " " + e.alphaToken}, status: 401, code: "invalid_token"},
		{name: "our token beside another authorization header is rejected", auth: []string{"Bearer " + e.alphaToken, "Basic dXNlcjpwYXNz"}, status: 401, code: "invalid_token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.with(t)
			opts := []reqOption{func(r *http.Request) {
				for _, v := range c.auth {
					r.Header.Add("Authorization", v)
				}
			}}
			res := e.do("GET", "/v1/whoami", "", opts...)
			if res.Status != c.status {
				t.Fatalf("status = %d, want %d: %s", res.Status, c.status, res.Body)
			}
			if c.code != "" && res.ErrorCode() != c.code {
				t.Errorf("code = %q, want %q", res.ErrorCode(), c.code)
			}
			if c.challenge != "" && !strings.Contains(res.Header.Get("WWW-Authenticate"), c.challenge) {
				t.Errorf("WWW-Authenticate = %q, want it to contain %q", res.Header.Get("WWW-Authenticate"), c.challenge)
			}
			if c.kind != "" {
				if got := res.JSON(t)["principal"].(map[string]any)["kind"]; got != c.kind {
					t.Errorf("principal kind = %v, want %s", got, c.kind)
				}
			}
			for _, v := range c.auth {
				if _, tok, ok := strings.Cut(v, " "); ok && len(tok) > 20 && strings.Contains(string(res.Body), tok) {
					t.Errorf("response echoes the credential")
				}
			}
		})
	}
}

func TestNoCredentialsWithoutAnonymousNeedsAuthentication(t *testing.T) {
	e := newEnv(t, withoutAnonymous())
	for _, path := range []string{"/v1/whoami", "/v1/agents", "/v1/agents/alpha/tokens"} {
		res := e.do("GET", path, "")
		if res.Status != 401 || res.ErrorCode() != "authentication_required" {
			t.Errorf("%s: got %d %s, want 401 authentication_required", path, res.Status, res.Body)
		}
		if res.Header.Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("%s: WWW-Authenticate = %q, want Bearer", path, res.Header.Get("WWW-Authenticate"))
		}
	}
	res := e.do("POST", "/v1/authorize", `{"action":"chat"}`)
	if res.Status != 401 || res.ErrorCode() != "authentication_required" {
		t.Errorf("authorize without a principal: got %d %s", res.Status, res.Body)
	}
}

func TestRevokedTokenFailsOnTheNextRequest(t *testing.T) {
	e := newEnv(t)
	ct := e.mintToken("alpha", authz.CreateTokenRequest{Label: "doomed"})
	if res := e.do("GET", "/v1/whoami", "", bearer(ct.Raw)); res.Status != 200 {
		t.Fatalf("fresh token: %d %s", res.Status, res.Body)
	}
	res := e.do("DELETE", "/v1/agents/alpha/tokens/"+itoa(ct.Token.ID), "", asUser("admin"))
	if res.Status != 200 {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	if res.JSON(t)["revoked_at"] == nil {
		t.Errorf("revoked token metadata lacks revoked_at: %s", res.Body)
	}
	res = e.do("GET", "/v1/whoami", "", bearer(ct.Raw))
	if res.Status != 401 || res.ErrorCode() != "invalid_token" || !strings.Contains(res.Text(), "revoked") {
		t.Fatalf("revoked token: %d %s", res.Status, res.Body)
	}
}

func TestExpiredTokenFails(t *testing.T) {
	e := newEnv(t)
	res := e.do("POST", "/v1/agents/alpha/tokens", `{"label":"short","expires_in":60}`, asUser("admin"))
	if res.Status != 201 {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	raw := res.JSON(t)["token"].(string)
	if r := e.do("GET", "/v1/whoami", "", bearer(raw)); r.Status != 200 {
		t.Fatalf("before expiry: %d %s", r.Status, r.Body)
	}
	e.clock.Advance(60 * time.Second)
	r := e.do("GET", "/v1/whoami", "", bearer(raw))
	if r.Status != 401 || r.ErrorCode() != "invalid_token" || !strings.Contains(r.Text(), "expired") {
		t.Fatalf("at expiry: %d %s", r.Status, r.Body)
	}
	if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
	}
}

func TestInactiveAgentTokenIsForbidden(t *testing.T) {
	e := newEnv(t)
	if r := e.do("PATCH", "/v1/agents/alpha", `{"status":"inactive"}`, asUser("admin")); r.Status != 200 {
		t.Fatalf("deactivate: %d %s", r.Status, r.Body)
	}
	r := e.do("GET", "/v1/whoami", "", bearer(e.alphaToken))
	if r.Status != 403 || r.ErrorCode() != "agent_inactive" {
		t.Fatalf("inactive agent's token: %d %s", r.Status, r.Body)
	}
	if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
	}
}

func TestStoreFailureDuringResolutionFailsClosed(t *testing.T) {
	e := newEnv(t)
	unissued, err := token.Generate(token.DefaultPrefix, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	_ = e.st.Close()
	r := e.do("GET", "/v1/whoami", "", bearer(unissued))
	if r.Status != 503 || r.ErrorCode() != "unavailable" {
		t.Fatalf("store down: %d %s, want 503 unavailable", r.Status, r.Body)
	}
}

func TestProxyUserFailuresAreRejected(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v1/whoami", "", asUser("nobody"))
	if r.Status != 401 {
		t.Fatalf("unknown proxy user: %d %s", r.Status, r.Body)
	}
	r = e.do("GET", "/v1/whoami", "", asUser("alice"))
	if r.Status != 200 {
		t.Fatalf("proxy user: %d %s", r.Status, r.Body)
	}
	if k := r.JSON(t)["principal"].(map[string]any)["id"]; k != "user:"+itoa(e.alice.ID) {
		t.Errorf("principal id = %v", k)
	}
	_ = context.Background()
}
