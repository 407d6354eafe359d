package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readyTimeout bounds how long a server may take to answer /readyz; stopTimeout
// how long it may take to exit after SIGTERM.
const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 20 * time.Second
)

// server is one running `agentauthz serve`.
type server struct {
	base   string // http://127.0.0.1:PORT
	cmd    *exec.Cmd
	exited chan struct{}
	errLog string // the server's stderr, dumped when the test fails
	client *http.Client
}

// startServer runs `agentauthz serve` on a free 127.0.0.1 port against
// dbURL with the extra serve flags, waits until /readyz answers 200, and
// stops it with SIGTERM when t ends.
func startServer(t *testing.T, dbURL string, flags ...string) *server {
	t.Helper()
	return startServerUntil(t, "/readyz", dbURL, flags...)
}

// startServerUntil is startServer waiting for GET path to answer 200
// instead of /readyz: "/healthz" for a server that is up but not ready.
func startServerUntil(t *testing.T, path, dbURL string, flags ...string) *server {
	t.Helper()
	var lastErr error
	// A free port can be taken between probing and binding; try again then.
	for attempt := 0; attempt < 3; attempt++ {
		s, err := launch(t, path, dbURL, flags)
		if err == nil {
			return s
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("agentauthz serve did not become ready: %v", lastErr)
	return nil
}

func launch(t *testing.T, readyPath, dbURL string, flags []string) (*server, error) {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	errLog := filepath.Join(t.TempDir(), "serve.stderr")
	f, err := os.Create(errLog)
	if err != nil {
		return nil, err
	}
	args := append([]string{"--database-url", dbURL, "serve", "--addr", addr}, flags...)
	cmd := exec.Command(binPath, args...)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	s := &server{
		base: "http://" + addr, cmd: cmd, exited: make(chan struct{}), errLog: errLog,
		client: &http.Client{Timeout: 10 * time.Second},
	}
	go func() { _ = cmd.Wait(); f.Close(); close(s.exited) }()
	t.Cleanup(func() { s.stop(t) })
	if err := s.waitOK(readyPath); err != nil {
		logText, _ := os.ReadFile(errLog)
		return nil, fmt.Errorf("%w; stderr:\n%s", err, logText)
	}
	return s, nil
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// cleanEnv is the test's environment without AGENTAUTHZ_* settings, so a
// developer's shell cannot change what the binary does.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AGENTAUTHZ_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitOK polls GET path until it answers 200, the process exits, or
// readyTimeout passes.
func (s *server) waitOK(path string) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-s.exited:
			return errors.New("server exited before it was ready")
		default:
		}
		resp, err := s.client.Get(s.base + path)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not 200 within %s (last error: %v)", path, readyTimeout, err)
		}
		select {
		case <-s.exited:
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits; the server's stderr goes to the test log
// when the test failed.
func (s *server) stop(t *testing.T) {
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			t.Errorf("server did not exit within %s of SIGTERM; killing it", stopTimeout)
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	if t.Failed() {
		logText, _ := os.ReadFile(s.errLog)
		t.Logf("agentauthz serve stderr (%s):\n%s", s.base, logText)
	}
}

// reqOpt adjusts a request: credentials and proxy headers.
type reqOpt func(*http.Request)

func bearer(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// asUser is a trusted proxy asserting the user's login.
func asUser(login string) reqOpt {
	return func(r *http.Request) { r.Header.Set("X-Forwarded-User", login) }
}

// asAudience is a trusted proxy asserting audiences.
func asAudience(names string) reqOpt {
	return func(r *http.Request) { r.Header.Set("X-Forwarded-Audience", names) }
}

// response is a fully read HTTP answer.
type response struct {
	method, path string
	status       int
	header       http.Header
	body         []byte
}

// do sends one request; body, when not nil, is sent as JSON.
func (s *server) do(t *testing.T, method, path string, body any, opts ...reqOpt) *response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("encode %s %s body: %v", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return &response{method: method, path: path, status: resp.StatusCode, header: resp.Header, body: b}
}

// want fails the test unless the status is one of codes.
func (r *response) want(t *testing.T, codes ...int) *response {
	t.Helper()
	for _, c := range codes {
		if r.status == c {
			return r
		}
	}
	t.Fatalf("%s %s: status %d, want %v; body: %s", r.method, r.path, r.status, codes, r.body)
	return r
}

// decode unmarshals the body into v.
func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%s %s: decoding %s: %v", r.method, r.path, r.body, err)
	}
}

// apiError is the one error shape of the API.
type apiError struct {
	Error struct {
		Code     string   `json:"code"`
		Message  string   `json:"message"`
		DeniedBy []string `json:"denied_by"`
	} `json:"error"`
}

func (r *response) apiError(t *testing.T) apiError {
	t.Helper()
	var e apiError
	r.decode(t, &e)
	return e
}

// decision is the POST /v1/authorize answer.
type decision struct {
	Allow    bool     `json:"allow"`
	DeniedBy []string `json:"denied_by"`
	Reasons  []string `json:"reasons"`
	AgentID  int64    `json:"agent_id"`
	// DecisionID names the decision in the access log and the decision log.
	DecisionID string `json:"decision_id"`
}

// authorize asks POST /v1/authorize with a token and returns the decision
// (the request must answer 200).
func (s *server) authorize(t *testing.T, tok, action, tool string) decision {
	t.Helper()
	body := map[string]string{"action": action}
	if tool != "" {
		body["tool"] = tool
	}
	var d decision
	s.do(t, "POST", "/v1/authorize", body, bearer(tok)).want(t, 200).decode(t, &d)
	return d
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
