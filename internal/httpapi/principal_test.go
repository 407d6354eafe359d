package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/credential"
	"github.com/agentauthz/agentauthz/internal/httpapi"
	"github.com/agentauthz/agentauthz/internal/metrics"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/principal"
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

func TestProxyHeaderFailuresSayWhichHeaderFailedWithoutInvalidToken(t *testing.T) {
	e := newEnv(t)
	if r := e.do("PATCH", "/v1/users/bob", `{"status":"disabled"}`, asUser("admin")); r.Status != 200 {
		t.Fatalf("disable bob: %d %s", r.Status, r.Body)
	}
	cases := []struct {
		name    string
		opts    []reqOption
		message string
	}{
		{"a user header naming no user", []reqOption{asUser("nobody")},
			"the proxy's user header (X-Forwarded-User) names no user (unknown)"},
		{"a user header naming a disabled user", []reqOption{asUser("bob")},
			"the user named by the proxy's user header (X-Forwarded-User) is disabled (user_disabled)"},
		{"a malformed user header", []reqOption{asUser("no such user")},
			"the proxy's user header (X-Forwarded-User) is malformed: name may contain only"},
		{"a malformed audience header", []reqOption{header("X-Forwarded-Audience", "acme, user:3")},
			"the proxy's audience header (X-Forwarded-Audience) is malformed: not an audience (malformed)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.with(t).do("GET", "/v1/whoami", "", c.opts...)
			if r.Status != 401 || r.ErrorCode() != "invalid_proxy_identity" {
				t.Fatalf("got %d %s, want 401 invalid_proxy_identity", r.Status, r.Body)
			}
			if !strings.Contains(r.Text(), c.message) {
				t.Errorf("body %s does not say %q", r.Body, c.message)
			}
			if strings.Contains(r.Text(), "bearer token") {
				t.Errorf("a proxy failure blames a bearer token that was never sent: %s", r.Body)
			}
			if h := r.Header.Get("WWW-Authenticate"); h != "Bearer" {
				t.Errorf("WWW-Authenticate = %q, want a plain Bearer challenge (no invalid_token: no token was sent)", h)
			}
		})
	}
	// A bearer token that fails keeps RFC 6750's invalid_token, even from a
	// trusted proxy that also names a user.
	r := e.do("GET", "/v1/whoami", "", bearer(corrupt(e.alphaToken)), asUser("nobody"))
	if r.Status != 401 || r.ErrorCode() != "invalid_token" || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("bad bearer token from a proxy: %d %s %q", r.Status, r.Body, r.Header.Get("WWW-Authenticate"))
	}
}

// resolveCounter counts the hot-path token lookups reaching the real store.
type resolveCounter struct {
	model.Store
	n atomic.Int64
}

func (c *resolveCounter) ResolveTokenHash(ctx context.Context, h string) (model.Resolved, error) {
	c.n.Add(1)
	return c.Store.ResolveTokenHash(ctx, h)
}

// guardedEnv serves e's store and service through a chain with a negative
// token cache and a failed-authentication throttle, behind a "proxy" at
// 127.0.0.1: X-Forwarded-For picks the client.
type guardedEnv struct {
	*env
	lookups *resolveCounter
	metrics *metrics.Metrics
}

func newGuardedEnv(t *testing.T, burst int, refill, negativeTTL time.Duration) *guardedEnv {
	e := newEnv(t)
	lookups := &resolveCounter{Store: e.st}
	m := metrics.New()
	logger := slog.New(slog.NewJSONHandler(e.logs, nil))
	cred := credential.New(lookups, credential.Options{CacheTTL: time.Minute, NegativeTTL: negativeTTL, Now: e.clock.Now, Logger: logger, Metrics: m})
	t.Cleanup(func() { _ = cred.Close(context.Background()) })
	proxies := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	throttle := principal.NewFailureThrottle(principal.ThrottleOptions{Burst: burst, Refill: refill, TrustedProxies: proxies, Metrics: m})
	st := e.st
	chain := principal.Chain{
		principal.BearerToken{Lookup: cred, Throttle: throttle},
		&principal.TrustedProxy{Networks: proxies, UserHeader: "X-Forwarded-User",
			LookupUser: func(ctx context.Context, login string) (*model.User, error) {
				u, err := st.GetUserByLogin(ctx, login)
				if err != nil {
					return nil, err
				}
				return &u, nil
			}},
		principal.AllowAnonymous{},
	}
	srv := httpapi.New(httpapi.Config{Logger: logger}, httpapi.Deps{Service: e.svc, Principals: chain, Metrics: m})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	g := &guardedEnv{env: e.with(t), lookups: lookups, metrics: m}
	g.url = ts.URL
	return g
}

// metric returns the value of one series on /metrics ("" if absent).
func (g *guardedEnv) metric(series string) string {
	g.t.Helper()
	res, err := http.Get(g.url + "/metrics")
	if err != nil {
		g.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

func from(client string) reqOption { return header("X-Forwarded-For", client) }

func TestRepeatedForgedTokenHitsTheStoreOncePerNegativeTTL(t *testing.T) {
	g := newGuardedEnv(t, 1000, time.Second, time.Minute)
	forged, err := token.Generate(token.DefaultPrefix, "alpha") // valid checksum, never issued
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		r := g.do("GET", "/v1/whoami", "", bearer(forged))
		if r.Status != 401 || r.ErrorCode() != "invalid_token" || !strings.Contains(r.Text(), "(unknown)") {
			t.Fatalf("attempt %d: %d %s, want 401 unknown", i+1, r.Status, r.Body)
		}
	}
	if n := g.lookups.n.Load(); n != 1 {
		t.Fatalf("5 uses of one forged token cost %d store lookups, want 1", n)
	}
	if v := g.metric("agentauthz_token_negative_cache_hits_total"); v != "4" {
		t.Errorf("agentauthz_token_negative_cache_hits_total = %q, want 4", v)
	}
	// A token minted now works on its first use: its hash was never asked for.
	ct := g.mintToken("alpha", authz.CreateTokenRequest{Label: "fresh"})
	if r := g.do("GET", "/v1/whoami", "", bearer(ct.Raw)); r.Status != 200 {
		t.Fatalf("token minted after negative entries: %d %s", r.Status, r.Body)
	}
}

func TestTooManyFailedAuthenticationsFromOneClientAre429WithoutTouchingTheStore(t *testing.T) {
	const burst = 3
	g := newGuardedEnv(t, burst, time.Minute, time.Minute)
	const attacker, neighbour = "203.0.113.7", "198.51.100.9"
	forge := func() string {
		raw, err := token.Generate(token.DefaultPrefix, "alpha")
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	// Distinct forgeries: each costs a lookup (the negative cache cannot
	// help), until the client's budget is spent.
	for i := range burst {
		if r := g.do("GET", "/v1/whoami", "", bearer(forge()), from(attacker)); r.Status != 401 {
			t.Fatalf("failure %d: %d %s, want 401", i+1, r.Status, r.Body)
		}
	}
	if n := g.lookups.n.Load(); n != burst {
		t.Fatalf("%d failures cost %d lookups, want %d", burst, n, burst)
	}
	for _, c := range []struct{ name, raw string }{
		{"another forged token", forge()},
		{"a valid token", g.alphaToken},
	} {
		r := g.do("GET", "/v1/whoami", "", bearer(c.raw), from(attacker))
		if r.Status != http.StatusTooManyRequests || r.ErrorCode() != "too_many_auth_failures" {
			t.Fatalf("%s from the limited client: %d %s, want 429 too_many_auth_failures", c.name, r.Status, r.Body)
		}
		secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || secs < 1 || secs > 60 {
			t.Errorf("Retry-After = %q, want whole seconds within one refill interval (60)", r.Header.Get("Retry-After"))
		}
	}
	if n := g.lookups.n.Load(); n != burst {
		t.Fatalf("refused attempts reached the store: %d lookups, want %d", n, burst)
	}
	// Another client is unaffected, for a valid token and for a failure.
	if r := g.do("GET", "/v1/whoami", "", bearer(g.alphaToken), from(neighbour)); r.Status != 200 {
		t.Fatalf("valid token from another client: %d %s", r.Status, r.Body)
	}
	if r := g.do("GET", "/v1/whoami", "", bearer(forge()), from(neighbour)); r.Status != 401 {
		t.Fatalf("forged token from another client: %d %s, want 401", r.Status, r.Body)
	}
	// A credential this process already holds (the neighbour's use cached
	// it) still works from the limited client, without a store query: one
	// guesser behind a shared address must not lock everyone there out.
	before := g.lookups.n.Load()
	if r := g.do("GET", "/v1/whoami", "", bearer(g.alphaToken), from(attacker)); r.Status != 200 {
		t.Fatalf("cached valid token from the limited client: %d %s, want 200", r.Status, r.Body)
	}
	if n := g.lookups.n.Load(); n != before {
		t.Fatalf("the cached credential cost %d store lookups", n-before)
	}
	// The limited client without a bearer token is not throttled here.
	if r := g.do("GET", "/v1/whoami", "", asUser("alice"), from(attacker)); r.Status != 200 {
		t.Fatalf("proxy user from the limited client: %d %s", r.Status, r.Body)
	}
	if v := g.metric("agentauthz_auth_throttled_total"); v != "2" {
		t.Errorf("agentauthz_auth_throttled_total = %q, want 2", v)
	}
}
