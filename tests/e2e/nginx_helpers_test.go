package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The placeholders of the README's nginx example that the test replaces
// with the addresses of this run: agentauthz and the upstream.
const (
	readmeAgentauthz = "http://127.0.0.1:8080"
	readmeUpstream   = "http://agents-api"
)

// nginxBinary finds Debian's nginx with the auth_request module. Without it
// the test is skipped, except under CI=true, where it fails: CI installs
// nginx (.ci/run), so a missing one is a broken machine, not a reason to
// pass without having run.
func nginxBinary(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: .ci/run installs it with apt-get install nginx)", msg)
		}
		t.Skipf("%s; install it (apt-get install nginx) to run this test", msg)
	}
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx" // not on PATH for non-root users
		if _, err := os.Stat(bin); err != nil {
			missing("nginx not found on PATH nor at %s", bin)
		}
	}
	out, err := exec.Command(bin, "-V").CombinedOutput()
	if err != nil {
		missing("%s -V: %v: %s", bin, err, out)
	}
	if !bytes.Contains(out, []byte("http_auth_request_module")) {
		missing("%s is built without http_auth_request_module", bin)
	}
	return bin
}

// readmeNginxExample is the README's nginx block for forward-auth, the
// configuration this test runs: the README marks it as tested, so it must
// stay what runs here.
func readmeNginxExample(t *testing.T) string {
	t.Helper()
	return readmeGatewayBlock(t, "nginx", readmeAgentauthz+"/v1/forward-auth;", readmeUpstream+";")
}

// upstream is the service behind nginx: it records every request that
// reaches it and answers 200 with a body naming what it saw.
type upstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method, uri string
	header      http.Header
	body        string
}

const upstreamHeader = "X-Upstream"

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, seenRequest{r.Method, r.RequestURI, r.Header.Clone(), string(b)})
		u.mu.Unlock()
		w.Header().Set(upstreamHeader, "reached")
		fmt.Fprintf(w, "upstream answered %s %s", r.Method, r.RequestURI)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// hits is the number of requests that reached the upstream so far.
func (u *upstream) hits() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

// last is the latest request that reached the upstream.
func (u *upstream) last() seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[len(u.seen)-1]
}

// gateway is one running gateway process (nginx: master in the foreground,
// daemon off; Caddy: caddy run) with its files in dir.
type gateway struct {
	name      string   // "nginx", "caddy": for messages
	readyPath string   // answers 204 once the gateway serves its config
	logFiles  []string // in dir, dumped when a test fails
	base      string
	dir       string
	cmd       *exec.Cmd
	exited    chan struct{}
	client    *http.Client
}

// startNginx runs nginx with the README's forward-auth example in front of
// up, asking the agentauthz server at authBase, with its prefix, config,
// logs, pid and temp files in a fresh t.TempDir(). It stops nginx when t ends.
func startNginx(t *testing.T, bin, authBase string, up *upstream) *gateway {
	t.Helper()
	locations := readmeNginxExample(t)
	locations = strings.Replace(locations, readmeAgentauthz, authBase, 1)
	locations = strings.Replace(locations, readmeUpstream, up.srv.URL, 1)
	g, err := retryOnPortTaken(func() (*gateway, error) { return launchNginx(t, bin, locations) })
	if err != nil {
		t.Fatalf("nginx did not start: %v", err)
	}
	return g
}

func launchNginx(t *testing.T, bin, locations string) (*gateway, error) {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	user := ""
	if os.Geteuid() == 0 {
		// Workers would run as nobody, who cannot use the 0700 temp dir.
		user = "user root;"
	}
	conf := fmt.Sprintf(`%[1]s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 64; }
http {
    access_log %[2]s/access.log;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    server {
        listen %[3]s;
        location = /_nginx_ready { return 204; }
        # ---- the README's example, verbatim but for the two addresses ----
%[4]s
    }
}
`, user, dir, addr, locations)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	errLog := filepath.Join(dir, "error.log")
	g := &gateway{name: "nginx", readyPath: "/_nginx_ready", logFiles: []string{"stderr", "error.log", "access.log"},
		base: "http://" + addr, dir: dir}
	if err := g.run(t, exec.Command(bin, "-p", dir+"/", "-c", confPath, "-e", errLog, "-g", "daemon off;")); err != nil {
		return nil, err
	}
	t.Logf("nginx on %s, config %s:\n%s", g.base, confPath, conf)
	return g, nil
}

func (g *gateway) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-g.exited:
			return fmt.Errorf("%s exited before it was ready", g.name)
		default:
		}
		resp, err := g.client.Get(g.base + g.readyPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s (last error: %v)", g.name, readyTimeout, err)
		}
		select {
		case <-g.exited:
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// logs is the gateway's log files (nginx: stderr, error log, access log).
func (g *gateway) logs() string {
	var b strings.Builder
	for _, name := range g.logFiles {
		text, _ := os.ReadFile(filepath.Join(g.dir, name))
		fmt.Fprintf(&b, "--- %s %s:\n%s", g.name, name, text)
	}
	return b.String()
}

// stop ends the gateway (SIGTERM: nginx's fast shutdown of master and
// workers, Caddy's graceful stop); its logs go to the test log when the test
// failed.
func (g *gateway) stop(t *testing.T) {
	select {
	case <-g.exited:
	default:
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.exited:
		case <-time.After(stopTimeout):
			t.Errorf("%s did not exit within %s of SIGTERM; killing it", g.name, stopTimeout)
			_ = g.cmd.Process.Kill()
			<-g.exited
		}
	}
	if t.Failed() {
		t.Logf("%s on %s:\n%s", g.name, g.base, g.logs())
	}
}

// do sends one request through the gateway.
func (g *gateway) do(t *testing.T, method, path, body string, opts ...reqOpt) *response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.base+path, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s through %s: %v", method, path, g.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s through %s: reading body: %v", method, path, g.name, err)
	}
	return &response{method: method, path: path, status: resp.StatusCode, header: resp.Header, body: b}
}

// header sets any request header (what a client could smuggle).
func header(name, value string) reqOpt {
	return func(r *http.Request) { r.Header.Set(name, value) }
}

// startGateway runs a gateway with the README's example in front of up, its
// check asking the authorizer at authBase (startNginx, startCaddy).
type startGateway func(t *testing.T, bin, authBase string, up *upstream) *gateway

// wantUpstreamIdentity checks what the upstream saw of the last allowed
// request: the request itself, and exactly the identity headers the
// gateway copied from agentauthz's answer (tool "" means no tool header at
// all), whatever the client sent under those names.
func wantUpstreamIdentity(t *testing.T, up *upstream, method, uri, body, action, tool string) {
	t.Helper()
	s := up.last()
	if s.method != method || s.uri != uri || s.body != body {
		t.Errorf("the upstream saw %s %s body %q, want %s %s body %q", s.method, s.uri, s.body, method, uri, body)
	}
	for name, want := range map[string]string{
		"X-Agentauthz-Agent": "chubes-bot", "X-Agentauthz-Owner": "chubes",
		"X-Agentauthz-Action": action, "X-Agentauthz-Tool": tool,
	} {
		if got := s.header.Values(name); strings.Join(got, ",") != want {
			t.Errorf("the upstream saw %s %q, want %q", name, got, want)
		}
	}
	if id := s.header.Values("X-Agentauthz-Decision-Id"); len(id) != 1 || id[0] == "" || id[0] == "forged" {
		t.Errorf("the upstream saw X-Agentauthz-Decision-Id %q, want agentauthz's decision id", id)
	}
}

// forgedIdentityHeaders are the trusted-proxy identity headers (serve's
// --proxy-user-header and --proxy-audience-header defaults) a client sends
// itself, each naming a principal the seeded world lets chat on the agent.
var forgedIdentityHeaders = []struct {
	name, path string
	opts       []reqOpt
}{
	{"user chubes, the owner", "/agents/chubes-bot/chat", []reqOpt{asUser("chubes")}},
	{"audience acme, an operator", "/agents/acme-bot/chat", []reqOpt{asAudience("acme")}},
	{"user and audience", "/agents/acme-bot/chat", []reqOpt{asUser("chubes"), asAudience("acme")}},
}

// checkTrustedGatewayStripsIdentity runs the README's gateway in front of an
// agentauthz that trusts it (--trusted-proxies=127.0.0.1/32, as the README
// allows only for a gateway that strips the client's identity headers): a
// client that sends those headers itself, without a token, gets 401 and
// never reaches the upstream. The same headers sent straight to agentauthz
// from the same trusted address pass, so it is the gateway's configuration,
// not agentauthz, that stops them.
func checkTrustedGatewayStripsIdentity(t *testing.T, db, bin string, start startGateway) {
	t.Helper()
	srv := startServer(t, db, "--trusted-proxies=127.0.0.1/32")
	up := newUpstream(t)
	gw := start(t, bin, srv.base, up)
	for _, f := range forgedIdentityHeaders {
		t.Run("a client's forged "+f.name+" gets 401 and never reaches the upstream", func(t *testing.T) {
			original := []reqOpt{header("X-Original-Method", "POST"), header("X-Original-URI", f.path)}
			if r := srv.do(t, "GET", "/v1/forward-auth", nil, append(original, f.opts...)...); r.status != http.StatusOK {
				t.Fatalf("control: straight from a trusted address these headers must pass, got %d: %s", r.status, r.body)
			}
			r, err := stops(http.StatusUnauthorized).check(t, gw, up, "POST", f.path, "", f.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if h := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
				t.Errorf("WWW-Authenticate %q, want agentauthz's Bearer challenge passed on by %s", h, gw.name)
			}
		})
	}
	t.Run("a token still passes the trusted gateway", func(t *testing.T) {
		tok := mintCLI(t, db, "chubes-bot")
		if _, err := passes.check(t, gw, up, "POST", "/agents/chubes-bot/chat", "", bearer(tok.Token)); err != nil {
			t.Fatal(err)
		}
		wantUpstreamIdentity(t, up, "POST", "/agents/chubes-bot/chat", "", "chat", "")
	})
}

// checkCatchesAnAlways200Authorizer shows that the passage checks can fail:
// with the gateway's check pointed at an authorizer that answers 200 to
// everything (what a denial as "200 allow:false" amounts to for a gateway),
// the check of a denial and of a missing credential reports the request
// that got through to the upstream.
func checkCatchesAnAlways200Authorizer(t *testing.T, bin string, start startGateway) {
	t.Helper()
	always200 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"allow":false,"denied_by":["token_ceiling"]}`)
	}))
	t.Cleanup(always200.Close)
	up := newUpstream(t)
	gw := start(t, bin, always200.URL, up)
	for _, c := range []struct {
		name string
		want passage
		opts []reqOpt
	}{
		{"a denial", stops(http.StatusForbidden), []reqOpt{bearer("datamachine_chubes-bot_chat-only")}},
		{"no credential", stops(http.StatusUnauthorized), nil},
	} {
		_, err := c.want.check(t, gw, up, "POST", "/agents/chubes-bot/tools/web_search", "", c.opts...)
		switch {
		case err == nil:
			t.Errorf("%s: the check passed although %s let the request through to the upstream", c.name, gw.name)
		case !strings.Contains(err.Error(), "reached the upstream"):
			t.Errorf("%s: the check failed for another reason than the upstream hit: %v", c.name, err)
		default:
			t.Logf("%s: the check fails, as it must: %v", c.name, err)
		}
	}
}
