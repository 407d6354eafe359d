package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one server process the harness started.
type proc struct {
	name   string
	base   string // http://127.0.0.1:PORT
	cmd    *exec.Cmd
	log    string // its stderr+stdout
	exited chan struct{}
}

// procs tracks every started server so all of them stop, even on failure.
type procs struct {
	mu   sync.Mutex
	list []*proc
}

// start runs bin with args (addr is already among them), output to logPath.
func (ps *procs) start(name, bin string, args, env []string, base, logPath string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, base: base, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.exited) }()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	return p, nil
}

// stopAll sends SIGTERM to every running server and waits (bounded).
func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	for _, p := range list {
		p.stop()
	}
}

// stop ends one server: SIGTERM, then SIGKILL after 15 s.
func (p *proc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		fmt.Fprintf(os.Stderr, "%s did not stop within 15s of SIGTERM; killing it\n", p.name)
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// tail is the end of the server's log, for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// waitReady polls GET base+path until 200, the process exits or 60 s pass.
func (p *proc) waitReady(ctx context.Context, path string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.Get(p.base + path)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not ready within 60s (%v); log:\n%s", p.name, path, err, p.tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready; log:\n%s", p.name, p.tail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// serverEnv is the environment both servers run with: ours without
// AGENTAUTHZ_* settings, and GOGC set when the run asks for it.
func serverEnv(gogc string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AGENTAUTHZ_") || (gogc != "" && strings.HasPrefix(kv, "GOGC=")) {
			continue
		}
		env = append(env, kv)
	}
	if gogc != "" {
		env = append(env, "GOGC="+gogc)
	}
	return env
}

// startAgentauthz runs `agentauthz serve` on dbURL with flags and waits for /readyz.
func (ps *procs) startAgentauthz(ctx context.Context, cfg config, name, dbURL string, flags ...string) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"--database-url", dbURL, "serve", "--addr", addr,
		"--access-log=" + fmt.Sprint(cfg.accessLog)}
	args = append(args, flags...)
	p, err := ps.start(name, cfg.bin, args, serverEnv(cfg.gogc), "http://"+addr, filepath.Join(cfg.work, name+".log"))
	if err != nil {
		return nil, err
	}
	return p, p.waitReady(ctx, "/readyz")
}

// startOPA runs OPA's own server on the staged bundle and waits for /health.
func (ps *procs) startOPA(ctx context.Context, cfg config, name, opaBin, bundleDir string) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"run", "--server", "--addr", addr, "--log-level", "error", "-b", bundleDir}
	p, err := ps.start(name, opaBin, args, serverEnv(cfg.gogc), "http://"+addr, filepath.Join(cfg.work, name+".log"))
	if err != nil {
		return nil, err
	}
	return p, p.waitReady(ctx, "/health?bundles")
}

// opaBinary finds the OPA pinned in go.mod: `go tool -n opa` builds it if
// needed and prints its path, so the server runs without a `go` parent.
func opaBinary(ctx context.Context, root string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "tool", "-n", "opa")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go tool -n opa: %w: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("go tool -n opa: %w", err)
	}
	path := strings.TrimSpace(string(out))
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("go tool -n opa printed %q: %w", path, err)
	}
	return path, nil
}

// stageBundle copies the policies (without tests, from any depth under
// policies/) and the default bundle's
// data and manifest into dir, laid out as an OPA bundle directory.
func stageBundle(root, dir string) error {
	// every .rego under policies/, subdirectories included, tests excluded
	src := filepath.Join(root, "policies")
	n := 0
	err := filepath.WalkDir(src, func(f string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(f, ".rego") || strings.HasSuffix(f, "_test.rego") {
			return err
		}
		rel, err := filepath.Rel(src, f)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, "policies", rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		n++
		return copyFile(f, dst)
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no policies in %s/policies", root)
	}
	for _, f := range []string{"data.json", ".manifest"} {
		if err := copyFile(filepath.Join(root, "bundles", "default", f), filepath.Join(dir, f)); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
