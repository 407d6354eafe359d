package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// readmeCaddySite is the site address of the README's Caddyfile example,
// which the test replaces with this run's gateway address.
const readmeCaddySite = "agents.example.com"

// caddyBuild builds tests/gateways/caddy (Caddy at the version pinned in its
// go.mod) once per test run, next to the agentauthz binary TestMain built, so
// it goes when the run ends. A cold build takes minutes; GOCACHE makes the
// next runs fast.
var caddyBuild struct {
	once sync.Once
	bin  string
	err  error
}

// caddyBinary returns the built Caddy. A failed build skips the test, except
// under CI=true, where it fails: CI has the Go toolchain and the module
// proxy, so a Caddy that does not build is a broken run, not a reason to pass
// without having run.
func caddyBinary(t *testing.T) string {
	t.Helper()
	caddyBuild.once.Do(func() {
		bin := filepath.Join(filepath.Dir(binPath), "caddy")
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Dir = filepath.Join(moduleRoot, "tests", "gateways", "caddy")
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			caddyBuild.err = fmt.Errorf("go build in %s: %w\n%s", cmd.Dir, err, out)
			return
		}
		caddyBuild.bin = bin
		t.Logf("built Caddy from tests/gateways/caddy in %s", time.Since(start).Round(time.Millisecond))
	})
	if caddyBuild.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("building Caddy (CI=true: a gateway that cannot be built is a failure): %v", caddyBuild.err)
		}
		t.Skipf("building Caddy failed; this test needs the Go module proxy or a module cache with Caddy's modules: %v", caddyBuild.err)
	}
	return caddyBuild.bin
}

// readmeCaddyExample is the README's Caddyfile for forward-auth, the
// configuration this test runs: the README marks it as tested, so it must
// stay what runs here.
func readmeCaddyExample(t *testing.T) string {
	t.Helper()
	return readmeGatewayBlock(t, "caddyfile", readmeCaddySite+" {", "forward_auth "+readmeAgentauthz+" {", "reverse_proxy "+readmeUpstream+"\n")
}

// readmeGatewayBlock is the first ```<fence> block of the README's
// forward-auth section, a gateway configuration that a test runs as
// documented; each placeholder, which the test replaces, must be in it once.
func readmeGatewayBlock(t *testing.T, fence string, placeholders ...string) string {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	if err != nil {
		t.Fatalf("reading README.md: %v", err)
	}
	_, section, ok := strings.Cut(string(text), "### Forward-auth for gateways")
	if !ok {
		t.Fatal("README.md has no forward-auth section")
	}
	_, block, ok := strings.Cut(section, "```"+fence+"\n")
	if !ok {
		t.Fatalf("README.md's forward-auth section has no ```%s block", fence)
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatalf("README.md's ```%s block is not closed", fence)
	}
	for _, p := range placeholders {
		if n := strings.Count(block, p); n != 1 {
			t.Fatalf("README.md's %s example has %q %d times, want once:\n%s", fence, p, n, block)
		}
	}
	return block
}

// retryOnPortTaken launches a gateway, again (up to three times in all) when
// the free port it probed was taken before it could bind it.
func retryOnPortTaken(launch func() (*gateway, error)) (*gateway, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var g *gateway
		if g, err = launch(); err == nil {
			return g, nil
		}
		if !strings.Contains(strings.ToLower(err.Error()), "address already in use") {
			break
		}
	}
	return nil, err
}

// run starts the gateway's process with its output in dir/stderr, stops it
// when t ends, and waits until it answers its readiness path.
func (g *gateway) run(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	out, err := os.Create(filepath.Join(g.dir, "stderr"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return err
	}
	g.cmd, g.exited, g.client = cmd, make(chan struct{}), &http.Client{Timeout: 10 * time.Second}
	go func() { _ = cmd.Wait(); out.Close(); close(g.exited) }()
	t.Cleanup(func() { g.stop(t) })
	if err := g.waitReady(); err != nil {
		return fmt.Errorf("%w\n%s", err, g.logs())
	}
	return nil
}

// startCaddy runs Caddy with the README's Caddyfile example in front of up,
// its forward_auth asking authBase, with its config, data and logs in a
// fresh t.TempDir(). It stops Caddy when t ends. Like a failed build, a
// Caddy that does not start skips the test, and fails it under CI=true.
func startCaddy(t *testing.T, bin, authBase string, up *upstream) *gateway {
	t.Helper()
	example := readmeCaddyExample(t)
	example = strings.Replace(example, "forward_auth "+readmeAgentauthz, "forward_auth "+authBase, 1)
	example = strings.Replace(example, "reverse_proxy "+readmeUpstream, "reverse_proxy "+up.srv.URL, 1)
	g, err := retryOnPortTaken(func() (*gateway, error) { return launchCaddy(t, bin, example) })
	if err == nil {
		return g
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("Caddy did not start (CI=true: a gateway that cannot start is a failure): %v", err)
	}
	t.Skipf("Caddy did not start: %v", err)
	return nil
}

func launchCaddy(t *testing.T, bin, example string) (*gateway, error) {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	site := "http://" + addr
	// Global options keep Caddy to this test: no admin endpoint, no saved
	// config, certificates storage (unused over http) in dir. The first site
	// only answers the readiness probe; it shares the listener with the
	// README's site, so its 204 means that site is served too.
	conf := fmt.Sprintf(`{
	admin off
	persist_config off
	storage file_system %[1]s/data
}

%[2]s/_caddy_ready {
	respond 204
}

# ---- the README's example, verbatim but for the three addresses ----
%[3]s`, dir, site, strings.Replace(example, readmeCaddySite+" {", site+" {", 1))
	confPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", confPath, "--adapter", "caddyfile")
	cmd.Env = append(cleanEnv(), "HOME="+dir, "XDG_CONFIG_HOME="+dir+"/config", "XDG_DATA_HOME="+dir+"/data")
	g := &gateway{name: "caddy", readyPath: "/_caddy_ready", logFiles: []string{"stderr"}, base: site, dir: dir}
	if err := g.run(t, cmd); err != nil {
		return nil, err
	}
	t.Logf("caddy on %s, config %s:\n%s", g.base, confPath, conf)
	return g, nil
}
