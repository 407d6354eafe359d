package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/agentauthz/agentauthz/internal/policy/policytest"
)

// localSignedConfig is an OPA configuration whose bundle is the local file
// at path, verified with the test public key.
func localSignedConfig(t testing.TB, path string) *OPAConfig {
	t.Helper()
	c, err := ParseOPAConfig(fmt.Appendf(nil, `
keys: {test: {algorithm: RS256}}
bundles: {authz: {resource: "file://%s", signing: {keyid: test}}}
plugins: {agentauthz: {key_files: {test: %q}}}
`, path, testPublicKey), "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSignedLocalBundle: with verification configured, a local bundle
// activates only when signed by the configured key and unchanged since;
// a refused reload leaves the signed bundle serving.
func TestSignedLocalBundle(t *testing.T) {
	signed := buildBundle(t, "valid", testSigningKey, nil)
	cases := []struct {
		name    string
		tarball []byte
		want    string // "" accepted; else part of the refusal
	}{
		{"signed by the configured key", signed, ""},
		{"data.json tampered after signing", policytest.Tamper(t, signed, "data.json", policytest.RankViewerAsAdmin(t)), "data.json: digest mismatch"},
		{"a policy tampered after signing", policytest.Tamper(t, signed, "main.rego", tamperRego), "main.rego: digest mismatch"},
		{"unsigned", buildBundle(t, "valid", "", nil), "signature"},
		{"signed by another key", buildBundle(t, "valid", otherKey(t), nil), "verification"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "bundle.tar.gz", tc.tarball)
			local, verify := localSignedConfig(t, path).LocalBundle()
			_, err := New(context.Background(), Options{BundlePath: local, Verification: verify})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatal("activated")
			case tc.want != "" && (!errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %q: want a rejection naming %q", err, tc.want)
			}
			if tc.want == "" {
				return
			}
			// The same bundle arriving at a reload is refused too, and the
			// signed one keeps serving.
			good := writeFile(t, "good.tar.gz", signed)
			eng, err := New(context.Background(), Options{BundlePath: good, Verification: verify})
			if err != nil {
				t.Fatal(err)
			}
			before := eng.Activation()
			if err := os.WriteFile(good, tc.tarball, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := eng.Reload(context.Background()); err == nil {
				t.Fatal("reload activated it")
			}
			if after := eng.Activation(); after.Generation != before.Generation || eng.LastLoad().Err == nil {
				t.Errorf("after a refused reload: generation %d (was %d), last load error %v", after.Generation, before.Generation, eng.LastLoad().Err)
			}
		})
	}
}

// TestRestrictedBuiltins: a bundle that calls a built-in reaching outside
// the process is refused with OPA's own compile error unless allowed;
// time and rand are never refused.
func TestRestrictedBuiltins(t *testing.T) {
	calling := func(call string) map[string]string {
		return map[string]string{"extra.rego": "package agentauthz.extra\n\nx := " + call + "\n"}
	}
	cases := []struct {
		name  string
		extra map[string]string
		allow []string
		want  string // "" accepted
	}{
		{"http.send refused", calling(`http.send({"method": "POST", "url": "http://127.0.0.1:1", "body": input})`), nil, "undefined function http.send"},
		{"http.send allowed", calling(`http.send({"method": "POST", "url": "http://127.0.0.1:1", "body": input})`), []string{"http.send"}, ""},
		{"allowing one does not allow another", calling(`net.lookup_ip_addr("example.com")`), []string{"http.send"}, "undefined function net.lookup_ip_addr"},
		{"opa.runtime refused", calling(`opa.runtime()`), nil, "undefined function opa.runtime"},
		{"pure net built-ins stay", calling(`net.cidr_contains("10.0.0.0/8", "10.1.2.3")`), nil, ""},
		{"time and rand stay", calling(`[time.now_ns(), rand.intn("x", 10)]`), nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "bundle.tar.gz", buildBundle(t, "valid", "", tc.extra))
			_, err := New(context.Background(), Options{BundlePath: path, AllowBuiltins: tc.allow})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("refused at reload, old bundle serving", func(t *testing.T) {
		path := writeFile(t, "bundle.tar.gz", buildBundle(t, "valid", "", nil))
		eng, _ := newEngine(t, path)
		before := eng.Activation().Revision
		sends := buildBundle(t, "valid", "", calling(`http.send({"method": "GET", "url": "http://127.0.0.1:1"})`))
		if err := os.WriteFile(path, sends, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := eng.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "undefined function http.send") {
			t.Fatalf("reload: %v", err)
		}
		if got := eng.Activation().Revision; got != before {
			t.Errorf("revision %s after a refused reload, want %s", got, before)
		}
	})
}

// bundleServer is a bundle server: it serves its current bundle with an
// ETag (304 when unchanged), or fails as told.
type bundleServer struct {
	mu      sync.Mutex
	body    []byte
	failing int // HTTP status to answer with; 0 serves the bundle
	hits    int
}

func (s *bundleServer) set(body []byte, failing int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.failing = body, failing
}

func (s *bundleServer) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

func (s *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits++
	if s.failing != 0 {
		http.Error(w, "down", s.failing)
		return
	}
	sum := sha256.Sum256(s.body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	_, _ = w.Write(s.body)
}

// TestBundleServer: a bundle server's signed bundle activates through the
// engine; a server that fails, answers garbage or serves a tampered bundle
// leaves the last good bundle serving, and the state says so.
func TestBundleServer(t *testing.T) {
	signed := buildBundle(t, "valid", testSigningKey, nil)
	srv := &bundleServer{body: signed}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	cfg, err := ParseOPAConfig(fmt.Appendf(nil, `
services: {bundles: {url: %q}}
keys: {test: {algorithm: RS256}}
bundles: {authz: {service: bundles, resource: /b.tar.gz, signing: {keyid: test}, polling: {min_delay_seconds: 1, max_delay_seconds: 1}}}
plugins: {agentauthz: {key_files: {test: %q}}}
`, ts.URL, testPublicKey), "")
	if err != nil {
		t.Fatal(err)
	}
	eng, _ := newEngine(t, fixture("valid"))
	local := eng.Activation().Revision
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := StartPlugins(ctx, cfg, eng, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())

	waitFor(t, "the bundle server's bundle to activate", func() bool { return p.BundleState().Activated })
	good := eng.Activation()
	if good.Revision == local || !strings.HasPrefix(good.Source, "bundle authz") {
		t.Fatalf("serving %s from %s, want the downloaded bundle", good.Revision, good.Source)
	}
	steps := []struct {
		name     string
		body     []byte
		failing  int
		why      string // part of the failure
		rejected bool   // a bundle arrived and was refused: counted
	}{
		{"server down", nil, http.StatusServiceUnavailable, "Service Unavailable", false},
		{"garbage", []byte("this is not a bundle"), 0, "gzip", true},
		{"data.json tampered inside the roots", policytest.Tamper(t, signed, "data.json", policytest.RankViewerAsAdmin(t)), 0, "data.json: digest mismatch", true},
		{"a policy tampered", policytest.Tamper(t, signed, "main.rego", tamperRego), 0, "main.rego: digest mismatch", true},
		{"unsigned", buildBundle(t, "valid", "", nil), 0, "signature", true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			srv.set(st.body, st.failing)
			seen, rejections := srv.requests(), eng.Health().Rejections
			waitFor(t, "two more download attempts", func() bool { return srv.requests() >= seen+2 })
			s := p.BundleState()
			if s.Err == nil || !strings.Contains(s.Err.Error(), st.why) || eng.LastLoad().Err == nil {
				t.Errorf("state %+v, last load %+v: want the failure naming %q", s, eng.LastLoad(), st.why)
			}
			if counted := eng.Health().Rejections > rejections; counted != st.rejected {
				t.Errorf("rejections counted: %v, want %v", counted, st.rejected)
			}
			if got := eng.Activation(); got.Generation != good.Generation {
				t.Errorf("serving generation %d (%s), want the last good %d", got.Generation, got.Revision, good.Generation)
			}
		})
	}
	t.Run("recovers", func(t *testing.T) {
		srv.set(signed, 0)
		waitFor(t, "a successful download", func() bool { return p.BundleState().Err == nil && eng.LastLoad().Err == nil })
	})
}

// TestBundleServerNotReadyBeforeFirstBundle: until the bundle server's
// bundle has activated, the state says it has not (readiness waits).
func TestBundleServerNotReadyBeforeFirstBundle(t *testing.T) {
	srv := &bundleServer{failing: http.StatusNotFound}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	cfg, err := ParseOPAConfig(fmt.Appendf(nil, "services: {b: {url: %q}}\nbundles: {authz: {resource: /x}}\n", ts.URL), "")
	if err != nil {
		t.Fatal(err)
	}
	eng, _ := newEngine(t, fixture("valid"))
	p, err := StartPlugins(context.Background(), cfg, eng, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())
	waitFor(t, "a download attempt", func() bool { return !p.BundleState().LastRequest.IsZero() })
	if s := p.BundleState(); s.Activated || s.Err == nil {
		t.Errorf("state %+v: want not activated, with the error", s)
	}
}
