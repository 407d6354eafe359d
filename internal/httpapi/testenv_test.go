package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/credential"
	"github.com/agentauthz/agentauthz/internal/httpapi"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
	"github.com/agentauthz/agentauthz/internal/store"
)

// testClock is a movable clock shared by the service and the credential
// cache, so expiry can be tested without sleeping.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type envConfig struct {
	anonymous bool
	http      httpapi.Config
}

type envOption func(*envConfig)

func withoutAnonymous() envOption { return func(c *envConfig) { c.anonymous = false } }

func withHTTPConfig(f func(*httpapi.Config)) envOption {
	return func(c *envConfig) { f(&c.http) }
}

// env is a real stack: SQLite store, the embedded default policy bundle,
// the credential cache, the service, the principal chain and the HTTP
// server, seeded with users, an agent and a token.
type env struct {
	t     testing.TB
	url   string
	st    *store.SQL
	svc   *authz.Service
	clock *testClock
	logs  *syncBuffer
	oa    *openAPIDoc
	// handler is the server's http.Handler, for in-process benchmarks.
	handler http.Handler

	admin, alice, bob model.User
	alpha             model.Agent
	alphaToken        string // raw; owned by alice through agent alpha
	alphaTokenID      int64
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	cfg := envConfig{anonymous: true, http: httpapi.Config{AccessLog: true}}
	for _, o := range opts {
		o(&cfg)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "agentauthz.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	engine, err := policy.New(ctx, policy.Options{})
	if err != nil {
		t.Fatalf("policy engine: %v", err)
	}
	clock := &testClock{now: time.Date(2026, 3, 18, 12, 0, 0, 0, time.UTC)}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cred := credential.New(st, credential.Options{CacheTTL: time.Hour, Now: clock.Now, Logger: logger})
	t.Cleanup(func() { _ = cred.Close(context.Background()) })
	svc := authz.New(st, engine, cred, authz.Config{Now: clock.Now, Logger: logger})
	chain := principal.Chain{
		principal.BearerToken{Lookup: cred},
		&principal.TrustedProxy{
			Networks:       []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
			UserHeader:     "X-Forwarded-User",
			AudienceHeader: "X-Forwarded-Audience",
			LookupUser: func(ctx context.Context, login string) (*model.User, error) {
				u, err := st.GetUserByLogin(ctx, login)
				if err != nil {
					return nil, err
				}
				return &u, nil
			},
		},
	}
	if cfg.anonymous {
		chain = append(chain, principal.AllowAnonymous{})
	}
	hc := cfg.http
	hc.Logger = logger
	srv := httpapi.New(hc, httpapi.Deps{Service: svc, Principals: chain, Ready: func(ctx context.Context) error { return st.Ping(ctx) }})
	e := &env{t: t, st: st, svc: svc, clock: clock, logs: logs, oa: loadOpenAPI(t), handler: srv.Handler()}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	e.url = ts.URL
	e.seed()
	t.Cleanup(func() { e.assertLogsCarryNoSecrets() })
	return e
}

// seed creates admin (administrator), alice (editor, owner of agent alpha)
// and bob (subscriber), and one token on alpha.
func (e *env) seed() {
	t, ctx, op := e.t, context.Background(), principal.Operator()
	t.Helper()
	mk := func(login string, roles ...string) model.User {
		u, err := e.svc.CreateUser(ctx, op, authz.CreateUserRequest{Login: login, Roles: roles})
		if err != nil {
			t.Fatalf("seed user %s: %v", login, err)
		}
		return u
	}
	e.admin = mk("admin", "administrator")
	e.alice = mk("alice", "editor")
	e.bob = mk("bob", "subscriber")
	a, err := e.svc.CreateAgent(ctx, op, authz.CreateAgentRequest{Slug: "alpha", Name: "Alpha", Owner: "alice"})
	if err != nil {
		t.Fatalf("seed agent: %v", err)
	}
	e.alpha = a
	ct, err := e.svc.CreateToken(ctx, op, "alpha", authz.CreateTokenRequest{Label: "seed"})
	if err != nil {
		t.Fatalf("seed token: %v", err)
	}
	e.alphaToken, e.alphaTokenID = ct.Raw, ct.Token.ID
}

// mintToken issues a token through the service as the operator.
func (e *env) mintToken(agent string, req authz.CreateTokenRequest) authz.CreatedToken {
	e.t.Helper()
	ct, err := e.svc.CreateToken(context.Background(), principal.Operator(), agent, req)
	if err != nil {
		e.t.Fatalf("mint token: %v", err)
	}
	return ct
}

// snapshot renders every stored record, to prove a failed request changed
// nothing.
func (e *env) snapshot() string {
	e.t.Helper()
	ctx := context.Background()
	var b strings.Builder
	us, err := e.st.ListUsers(ctx)
	if err != nil {
		e.t.Fatalf("snapshot users: %v", err)
	}
	as, err := e.st.ListAgents(ctx, model.AgentQuery{All: true})
	if err != nil {
		e.t.Fatalf("snapshot agents: %v", err)
	}
	fmt.Fprintf(&b, "users=%s\nagents=%s\n", mustJSON(us), mustJSON(as))
	for _, a := range as {
		ts, err := e.st.ListTokens(ctx, a.ID)
		if err != nil {
			e.t.Fatalf("snapshot tokens: %v", err)
		}
		gs, err := e.st.ListGrants(ctx, a.ID)
		if err != nil {
			e.t.Fatalf("snapshot grants: %v", err)
		}
		// last_used_at moves with successful authentication, not with the
		// request under test's effect.
		for i := range ts {
			ts[i].LastUsedAt = nil
		}
		fmt.Fprintf(&b, "agent %d tokens=%s grants=%s\n", a.ID, mustJSON(ts), mustJSON(gs))
	}
	return b.String()
}

// rawTokenRe matches a whole raw token (display hints are shorter).
var rawTokenRe = regexp.MustCompile(`datamachine_[a-z0-9_-]+_[0-9a-f]{64}`)

// with returns the env reporting to t (a subtest).
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// assertLogsCarryNoSecrets checks that no raw token and no Authorization
// header value ever reached the logs.
func (e *env) assertLogsCarryNoSecrets() {
	logs := e.logs.String()
	for _, secret := range []string{e.alphaToken, "Authorization", "authorization", "Basic dXNlcjpwYXNz"} {
		if secret != "" && strings.Contains(logs, secret) {
			e.t.Errorf("logs contain %q", secret)
		}
	}
	if rawTokenRe.MatchString(logs) {
		e.t.Errorf("logs contain a raw token: %s", rawTokenRe.FindString(logs))
	}
}

// request options

type reqOption func(*http.Request)

func bearer(raw string) reqOption {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+raw) }
}

func asUser(login string) reqOption {
	return func(r *http.Request) { r.Header.Set("X-Forwarded-User", login) }
}

func header(k, v string) reqOption {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

func contentType(ct string) reqOption { return header("Content-Type", ct) }

func noContentType() reqOption { return func(r *http.Request) { r.Header.Del("Content-Type") } }

// chunked hides the body length so the server cannot reject it early.
func chunked() reqOption {
	return func(r *http.Request) {
		r.ContentLength = -1
		body := r.Body
		r.Body = io.NopCloser(struct{ io.Reader }{body})
	}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as an object.
func (r *response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// ErrorCode returns error.code of an error body ("" if none).
func (r *response) ErrorCode() string {
	var b struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Code
}

func (r *response) ErrorField() string {
	var b struct {
		Error struct {
			Field string `json:"field"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Field
}

// do sends a request (body "" = none; a body defaults to application/json)
// and validates the response against the OpenAPI document.
func (e *env) do(method, path, body string, opts ...reqOption) *response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	out := &response{Status: res.StatusCode, Header: res.Header, Body: b}
	e.oa.validate(e.t, req, out)
	return out
}

// openAPIDoc validates real responses against the served document.
type openAPIDoc struct {
	doc    *openapi3.T
	router routers.Router
}

// envoyCheckPath is the document's Envoy forward-auth path.
const envoyCheckPath = "/v1/forward-auth/envoy/{path}"

var (
	oaOnce sync.Once
	oaDoc  *openAPIDoc
	oaErr  error
)

func loadOpenAPI(t testing.TB) *openAPIDoc {
	t.Helper()
	oaOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(httpapi.OpenAPI)
		if err != nil {
			oaErr = err
			return
		}
		if err := doc.Validate(loader.Context); err != nil {
			oaErr = fmt.Errorf("document invalid: %w", err)
			return
		}
		// OpenAPI 3.0 has no path parameter that spans segments, so the
		// document names the Envoy check's tail {path}; kin's legacy router
		// matches a tail only as {path*}.
		if item := doc.Paths.Value(envoyCheckPath); item != nil {
			doc.Paths.Delete(envoyCheckPath)
			doc.Paths.Set(strings.TrimSuffix(envoyCheckPath, "}")+"*}", item)
		}
		router, err := legacy.NewRouter(doc)
		if err != nil {
			oaErr = err
			return
		}
		oaDoc = &openAPIDoc{doc: doc, router: router}
	})
	if oaErr != nil {
		t.Fatalf("openapi: %v", oaErr)
	}
	return oaDoc
}

func (o *openAPIDoc) validate(t testing.TB, req *http.Request, res *response) {
	t.Helper()
	if err := o.check(req, res); err != nil {
		t.Errorf("response of %s %s (%d) breaks the OpenAPI document: %v\nbody: %s", req.Method, req.URL.Path, res.Status, err, res.Body)
	}
}

// check validates one response against the document. Routes outside the
// document (404/405) must still answer with the documented error schema.
func (o *openAPIDoc) check(req *http.Request, res *response) error {
	vreq := req.Clone(context.Background())
	vreq.URL.Scheme, vreq.URL.Host = "", ""
	route, params, err := o.router.FindRoute(vreq)
	var rerr *routers.RouteError
	if errors.As(err, &rerr) {
		var v any
		if err := json.Unmarshal(res.Body, &v); err != nil {
			return fmt.Errorf("error body is not JSON: %w", err)
		}
		return o.doc.Components.Schemas["Error"].Value.VisitJSON(v)
	}
	if err != nil {
		return err
	}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route},
		Status:                 res.Status,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(res.Body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
}

// Text is the body as text.
func (r *response) Text() string { return string(r.Body) }

func itoa(n int64) string { return fmt.Sprint(n) }
