// Package openapiclient proves the served OpenAPI document is a contract a
// third-party generator accepts as it is: oapi-codegen, with default
// options, generates a Go client from GET /v1/openapi.json that compiles
// and drives a live server, including clearing a tool policy with null.
// The generated code is a build output: it is written under build/ for the
// test's duration and never committed.
package openapiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	// The generated client imports it; this keeps it in go.mod.
	_ "github.com/oapi-codegen/runtime"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/credential"
	"github.com/agentauthz/agentauthz/internal/httpapi"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
	"github.com/agentauthz/agentauthz/internal/store"
)

// TestGeneratedClientRoundTrip generates the client from the served
// document and runs testdata/roundtrip.go with it: create an agent with a
// tool policy, rename it (the policy stays), clear the policy with
// tool_policy null, read it back, mint a token and list it. Then it checks
// the store agrees.
func TestGeneratedClientRoundTrip(t *testing.T) {
	ctx := context.Background()
	st, url := serve(t)
	root := moduleRoot(t)

	dir := generatedDir(t, root)
	doc := filepath.Join(dir, "openapi.json")
	if err := os.WriteFile(doc, get(t, url+"/v1/openapi.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, root, "go", "tool", "oapi-codegen", "-generate", "types,client", "-package", "main",
		"-o", filepath.Join(dir, "client.gen.go"), doc)
	program, err := os.ReadFile(filepath.Join("testdata", "roundtrip.go"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "roundtrip.go"), program, 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, root, "go", "run", "./"+filepath.ToSlash(rel), "-server", url, "-user", "alice")

	var res struct {
		AgentID int64 `json:"agent_id"`
		TokenID int64 `json:"token_id"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("round trip output %q: %v", out, err)
	}
	agent, err := st.GetAgent(ctx, res.AgentID)
	if err != nil {
		t.Fatalf("the round trip's agent: %v", err)
	}
	if agent.Slug != "roundtrip" || agent.ToolPolicy != nil {
		t.Errorf("stored agent %q has tool policy %+v; want roundtrip with none", agent.Slug, agent.ToolPolicy)
	}
	tokens, err := st.ListTokens(ctx, agent.ID)
	if err != nil || len(tokens) != 1 || tokens[0].ID != res.TokenID {
		t.Errorf("stored tokens %+v (%v); want the one token %d", tokens, err, res.TokenID)
	}
}

// serve runs the real handler on a SQLite store with the default policy,
// trusting proxy headers from loopback, and seeds alice (editor).
func serve(t *testing.T) (*store.SQL, string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "agentauthz.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	cred := credential.New(st, credential.Options{CacheTTL: time.Minute, Logger: quiet})
	t.Cleanup(func() { _ = cred.Close(context.Background()) })
	svc := authz.New(st, engine, cred, authz.Config{Logger: quiet})
	if _, err := svc.CreateUser(ctx, principal.Operator(), authz.CreateUserRequest{Login: "alice", Roles: []string{"editor"}}); err != nil {
		t.Fatal(err)
	}
	chain := principal.Chain{
		principal.BearerToken{Lookup: cred},
		&principal.TrustedProxy{
			Networks:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
			UserHeader: "X-Forwarded-User",
			LookupUser: func(ctx context.Context, login string) (*model.User, error) {
				u, err := st.GetUserByLogin(ctx, login)
				return &u, err
			},
		},
	}
	srv := httpapi.New(httpapi.Config{Logger: quiet}, httpapi.Deps{Service: svc, Principals: chain})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return st, ts.URL
}

// moduleRoot is the repository root; `go test` runs in tests/openapiclient.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return root
}

// generatedDir is a fresh directory inside the module (so the generated
// package builds against go.mod), under the ignored build/ and named so that
// ./... patterns skip it; removed after.
func generatedDir(t *testing.T, root string) string {
	t.Helper()
	parent := filepath.Join(root, "build")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(parent, "_openapiclient-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, res.StatusCode, err)
	}
	return b
}

// run runs a command in dir and returns its standard output; it fails the
// test with both outputs when the command fails.
func run(t *testing.T, dir, name string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}
