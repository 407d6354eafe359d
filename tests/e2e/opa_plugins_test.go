package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/policy/policytest"
	"github.com/agentauthz/agentauthz/internal/store/pgtest"
)

// bundleRolloutBound is how long a replica polling every second may take
// to pick up (or refuse) a newly published bundle.
const bundleRolloutBound = 20 * time.Second

// testPublicKey verifies bundles signed by `make bundle` with its default,
// test-only key (relative to the repository root).
var testPublicKey = filepath.Join("tests", "testdata", "bundle-signing", "test-only-signing-key.pub.pem")

// buildSignedBundle builds the default bundle as `make bundle` does (the
// same staging, `go tool opa build --signing-key` with the test-only key)
// with manifest revision rev, and returns the tarball's path.
func buildSignedBundle(t *testing.T, rev string) string {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "agentauthz-bundle.tar.gz")
	cmd := exec.Command("make", "-s", "bundle", "BUNDLE_REVISION="+rev, "BUNDLE_OUT="+out, "BUNDLE_SRC="+filepath.Join(dir, "src"))
	cmd.Dir = moduleRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make bundle: %v\n%s", err, b)
	}
	return out
}

// tamperBundle copies a signed tarball with the viewer agent role ranked as
// admin in its data.json (inside the manifest's roots, so only the
// signature's digest can catch it), keeping the signature: what an
// attacker on the bundle server could do.
func tamperBundle(t *testing.T, signed string) string {
	t.Helper()
	b, err := os.ReadFile(signed)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "tampered.tar.gz")
	if err := os.WriteFile(out, policytest.Tamper(t, b, "data.json", policytest.RankViewerAsAdmin(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// logged reports whether the server's log so far contains text.
func (s *server) logged(t *testing.T, text string) bool {
	t.Helper()
	b, err := os.ReadFile(s.errLog)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(text))
}

// publish puts a bundle tarball where nginx serves it, atomically (rename).
func publish(t *testing.T, docroot, tarball string) {
	t.Helper()
	b, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(docroot, ".agentauthz.tar.gz.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(docroot, "agentauthz.tar.gz")); err != nil {
		t.Fatal(err)
	}
}

// logCollector is a decision-log and status endpoint, as OPA's plugins
// upload to: POST /logs (gzip JSON arrays of events), POST /status.
type logCollector struct {
	srv    *httptest.Server
	mu     sync.Mutex
	raw    bytes.Buffer // every decompressed body, to search for secrets
	events []map[string]any
	status []map[string]any
}

func newLogCollector(t *testing.T) *logCollector {
	c := &logCollector{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := io.Reader(r.Body)
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.raw.Write(b)
		c.raw.WriteByte('\n')
		switch r.URL.Path {
		case "/logs":
			var batch []map[string]any
			if err := json.Unmarshal(b, &batch); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			c.events = append(c.events, batch...)
		case "/status":
			var s map[string]any
			if err := json.Unmarshal(b, &s); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			c.status = append(c.status, s)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// event finds a decision-log event matching match.
func (c *logCollector) event(match func(ev map[string]any) bool) map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range c.events {
		if match(ev) {
			return ev
		}
	}
	return nil
}

// statusWith reports whether a status report names the bundle revision.
func (c *logCollector) statusWith(revision string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.status {
		if strings.HasPrefix(fmt.Sprint(field(s, "bundles", "authz", "active_revision")), revision) {
			return true
		}
	}
	return false
}

func (c *logCollector) rawBodies() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.raw.String()
}

// field reads a nested field of a decoded JSON object; nil when absent.
func field(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// bundleRevision is the revision of the bundle the server serves, from /metrics.
func (s *server) bundleRevision(t *testing.T) string {
	t.Helper()
	r := s.do(t, "GET", "/metrics", nil).want(t, 200)
	for line := range strings.SplitSeq(string(r.body), "\n") {
		if rest, ok := strings.CutPrefix(line, `agentauthz_policy_bundle_info{revision="`); ok {
			rev, _, _ := strings.Cut(rest, `"`)
			return rev
		}
	}
	return ""
}

// Three replicas on one PostgreSQL pull a signed bundle from nginx through
// OPA's downloader and ship decision logs and status through OPA's plugins:
// a new revision reaches all three, a tampered one is refused by all three
// with the previous one serving, and a sample of decisions arrives at the
// collector with its fields and no token material.
func TestOPAPluginsFleet(t *testing.T) {
	t.Parallel()
	bin := nginxBinary(t)
	docroot := t.TempDir()
	rev1, rev2 := buildSignedBundle(t, "fleet-1"), buildSignedBundle(t, "fleet-2")
	publish(t, docroot, rev1)
	col := newLogCollector(t)
	config := bundleServerConfig(t, bin, docroot, fmt.Sprintf(`
  collector: {url: %q}
labels: {fleet: e2e}
decision_logs:
  service: collector
  reporting: {min_delay_seconds: 1, max_delay_seconds: 1}
status: {service: collector}
`, col.srv.URL))
	db := pgtest.NewDatabase(t)
	seedWorld(t, db)
	var replicas []*server
	for range 3 {
		// ready only once the bundle server's bundle has activated
		replicas = append(replicas, startServer(t, db, "--opa-config", config, "--trusted-proxies=127.0.0.1/32"))
	}
	servingEverywhere := func(prefix string) func() bool {
		return func() bool {
			for _, s := range replicas {
				if !strings.HasPrefix(s.bundleRevision(t), prefix+"+") {
					return false
				}
			}
			return true
		}
	}
	pollUntil(t, bundleRolloutBound, "fleet-1 serving on every replica", servingEverywhere("fleet-1"))

	t.Run("a new revision reaches every replica", func(t *testing.T) {
		publish(t, docroot, rev2)
		start := time.Now()
		pollUntil(t, bundleRolloutBound, "fleet-2 serving on every replica", servingEverywhere("fleet-2"))
		t.Logf("fleet-2 served by all three replicas %v after it was published", time.Since(start).Round(time.Millisecond))
		pollUntil(t, bundleRolloutBound, "a status report naming fleet-2", func() bool { return col.statusWith("fleet-2") })
	})

	t.Run("a tampered bundle is refused by every replica", func(t *testing.T) {
		rejections := make([]string, len(replicas))
		for i, s := range replicas {
			rejections[i] = s.metric(t, "agentauthz_policy_bundle_rejections_total")
		}
		publish(t, docroot, tamperBundle(t, rev2))
		pollUntil(t, bundleRolloutBound, "every replica refusing the tampered bundle for its digest", func() bool {
			for i, s := range replicas {
				if s.metric(t, "agentauthz_policy_bundle_load_failing") != "1" ||
					s.metric(t, "agentauthz_policy_bundle_rejections_total") == rejections[i] ||
					!s.logged(t, "data.json: digest mismatch") {
					return false
				}
			}
			return true
		})
		for i, s := range replicas {
			if rev := s.bundleRevision(t); !strings.HasPrefix(rev, "fleet-2+") {
				t.Errorf("replica %d serves %q after the tampered bundle, want fleet-2", i, rev)
			}
			// still ready (the last good bundle serves), and saying so
			if r := s.do(t, "GET", "/readyz", nil).want(t, 200); !strings.Contains(string(r.body), `"bundle":"stale"`) {
				t.Errorf("replica %d /readyz does not say the bundle is stale: %s", i, r.body)
			}
		}
		publish(t, docroot, rev2) // the server is trusted again
	})

	t.Run("decisions arrive at the collector without token material", func(t *testing.T) {
		tok := mintCLI(t, db, "chubes-bot")
		type sample struct {
			name          string
			s             *server
			action, tool  string
			allow, memo   bool
			deniedByLayer string
		}
		samples := []sample{
			{"allowed", replicas[0], "use_tools", "web_search", true, false, ""},
			{"the same question again: memo", replicas[0], "use_tools", "web_search", true, true, ""},
			{"denied by the tool policy", replicas[1], "use_tools", "shell", false, false, "tool_policy"},
			{"allowed on the third replica", replicas[2], "chat", "", true, false, ""},
		}
		answered := map[string]string{} // sample -> the answer's decision id
		for _, sm := range samples {
			d := sm.s.authorize(t, tok.Token, sm.action, sm.tool)
			if d.Allow != sm.allow {
				t.Fatalf("%s: allow %v, want %v (%+v)", sm.name, d.Allow, sm.allow, d)
			}
			answered[sm.name] = d.DecisionID
		}
		for _, sm := range samples {
			var ev map[string]any
			pollUntil(t, bundleRolloutBound, sm.name+": its decision-log entry", func() bool {
				ev = col.event(func(ev map[string]any) bool {
					// the entry of this very answer: one decision id end to end
					return answered[sm.name] != "" && field(ev, "decision_id") == answered[sm.name]
				})
				return ev != nil
			})
			checks := []struct {
				what string
				ok   bool
			}{
				{"question", field(ev, "custom", "token_id") == float64(tok.ID) && field(ev, "custom", "ability") == "authorize" &&
					field(ev, "custom", "action") == sm.action && (sm.tool == "" || field(ev, "custom", "tool") == sm.tool)},
				{"memo or fresh", field(ev, "custom", "memo") == sm.memo},
				{"timestamp", field(ev, "timestamp") != nil},
				{"principal", field(ev, "custom", "principal", "kind") == "token" && field(ev, "custom", "principal", "id") == fmt.Sprintf("token:%d", tok.ID)},
				{"agent and owner", field(ev, "custom", "agent_id") == float64(tok.AgentID) && field(ev, "custom", "owner_id") != nil},
				{"result", field(ev, "result", "allow") == sm.allow && field(ev, "result", "denied_by") != nil && field(ev, "result", "role") != nil},
				{"denied_by", sm.deniedByLayer == "" || strings.Contains(fmt.Sprint(field(ev, "result", "denied_by")), sm.deniedByLayer)},
				{"bundle revision", strings.HasPrefix(fmt.Sprint(field(ev, "bundles", "agentauthz", "revision")), "fleet-2+")},
				{"latency", field(ev, "custom", "latency_ns") != nil},
				{"labels", field(ev, "labels", "fleet") == "e2e"},
			}
			for _, c := range checks {
				if !c.ok {
					t.Errorf("%s: %s wrong in %v", sm.name, c.what, ev)
				}
			}
		}
		raw := col.rawBodies()
		sum := sha256.Sum256([]byte(tok.Token))
		for what, secret := range map[string]string{"the raw token": tok.Token, "its SHA-256 hex": hex.EncodeToString(sum[:])} {
			if strings.Contains(raw, secret) {
				t.Errorf("the collector received %s", what)
			}
		}
	})
}

// A replica configured for a bundle server's bundle decides nothing until
// that bundle arrives: it is up (/healthz) but not ready, and it answers
// every question 503, never with the embedded default policy.
func TestReplicaAwaitingItsBundleDecidesNothingUntilItArrives(t *testing.T) {
	t.Parallel()
	bin := nginxBinary(t)
	docroot := t.TempDir() // empty: the bundle server has nothing yet
	config := bundleServerConfig(t, bin, docroot, "")
	db := sqliteURL(t)
	seedWorld(t, db)
	tok := mintCLI(t, db, "chubes-bot")
	s := startServerUntil(t, "/healthz", db, "--opa-config", config)
	ask := func() *response {
		return s.do(t, "POST", "/v1/authorize", map[string]string{"action": "chat"}, bearer(tok.Token))
	}

	if r := s.do(t, "GET", "/readyz", nil); r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), `"bundle":"waiting"`) {
		t.Fatalf("/readyz before the bundle: %d %s; want 503 with bundle waiting", r.status, r.body)
	}
	if r := ask(); r.status != http.StatusServiceUnavailable {
		t.Fatalf("an authorize before the bundle answered %d %s; want 503 (no policy decides yet)", r.status, r.body)
	}

	publish(t, docroot, buildSignedBundle(t, "first"))
	pollUntil(t, bundleRolloutBound, "the first bundle serving", func() bool {
		return strings.HasPrefix(s.bundleRevision(t), "first+")
	})
	var d decision
	ask().want(t, http.StatusOK).decode(t, &d)
	if !d.Allow {
		t.Fatalf("once the bundle serves, the owner's token is denied: %+v", d)
	}
}

// bundleServerConfig starts nginx serving docroot under /bundles/ and
// writes an OPA configuration that pulls agentauthz.tar.gz from it every
// second, verified with the test-only key; more is YAML that continues the
// services map (its first lines) and adds top-level sections.
func bundleServerConfig(t *testing.T, nginxBin, docroot, more string) string {
	t.Helper()
	nginx, err := launchNginx(t, nginxBin, fmt.Sprintf("location /bundles/ { alias %s/; }", docroot))
	if err != nil {
		t.Fatalf("nginx: %v", err)
	}
	config := filepath.Join(t.TempDir(), "opa.yaml")
	err = os.WriteFile(config, fmt.Appendf(nil, `
keys:
  test: {algorithm: RS256}
bundles:
  authz:
    service: bundles
    resource: /bundles/agentauthz.tar.gz
    signing: {keyid: test}
    polling: {min_delay_seconds: 1, max_delay_seconds: 1}
plugins:
  agentauthz:
    key_files: {test: %q}
services:
  bundles: {url: %q}%s`, filepath.Join(moduleRoot, testPublicKey), nginx.base, more), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return config
}
