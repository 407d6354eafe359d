package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/agentauthz/agentauthz/internal/httpapi"
	"github.com/agentauthz/agentauthz/internal/metrics"
)

// deadlineServer is a bare server (no store) with a short request
// deadline, JSON logs in a buffer and metrics, for handlers a test adds.
type deadlineServer struct {
	srv  *httpapi.Server
	logs *syncBuffer
	m    *metrics.Metrics
}

func newDeadlineServer(t *testing.T, timeout time.Duration, ready func(context.Context) error) *deadlineServer {
	t.Helper()
	logs := &syncBuffer{}
	m := metrics.New()
	srv := httpapi.New(httpapi.Config{
		RequestTimeout: timeout, AccessLog: true,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, httpapi.Deps{Metrics: m, Ready: ready})
	return &deadlineServer{srv: srv, logs: logs, m: m}
}

// records returns the decoded log records with the given message.
func (d *deadlineServer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(d.logs.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (d *deadlineServer) scrape(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	d.m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// A handler stuck in a call that ignores its context (lib/pq on a frozen
// server) does not hold the request: the client gets 503 timeout at the
// deadline, the late answer goes nowhere, and the 503 is what the access
// log and the metrics record, once.
func TestDeadlineHoldsWhenTheHandlerDoesNotReturn(t *testing.T) {
	const timeout = 200 * time.Millisecond
	d := newDeadlineServer(t, timeout, nil)
	release := make(chan struct{})
	lateWrite := make(chan error, 1)
	d.srv.Echo().GET("/test/stuck", func(c echo.Context) error {
		c.Response().Header().Set("X-Late", "yes")
		<-release // ignores the request context, as a blocked driver call does
		err := c.JSON(http.StatusOK, map[string]any{"allow": true})
		lateWrite <- err
		return err
	})
	ts := httptest.NewServer(d.srv.Handler())
	defer ts.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	req, _ := http.NewRequest("GET", ts.URL+"/test/stuck", nil)
	req.Header.Set("X-Request-Id", "stuck-1")
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	took := time.Since(start)
	if took > timeout+time.Second {
		t.Errorf("answered after %s, want about %s", took, timeout)
	}
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"code":"timeout"`) {
		t.Fatalf("got %d %s, want 503 timeout", res.StatusCode, body)
	}
	if got := res.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	if res.Header.Get("X-Request-Id") != "stuck-1" || res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("X-Late") != "" {
		t.Errorf("headers %v", res.Header)
	}
	if !res.Close {
		t.Error("the 503 does not close the connection, which stays busy until the handler returns")
	}
	// The stuck handler holds its own connection only.
	for range 3 {
		start := time.Now()
		res, err := http.Get(ts.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK || time.Since(start) > time.Second {
			t.Errorf("/healthz while a handler is stuck: %d after %s", res.StatusCode, time.Since(start))
		}
	}

	close(release)
	select {
	case err := <-lateWrite:
		if !errors.Is(err, http.ErrHandlerTimeout) {
			t.Errorf("late handler's write returned %v, want http.ErrHandlerTimeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("late handler never wrote")
	}
	waitFor(t, 5*time.Second, "discarded answer logged", func() bool {
		return len(d.records(t, "request finished after its deadline; its answer was discarded")) == 1
	})
	var access []map[string]any
	for _, rec := range d.records(t, "request") {
		if rec["route"] != "/healthz" {
			access = append(access, rec)
		}
	}
	if len(access) != 1 || access[0]["status"] != float64(503) || access[0]["route"] != "/test/stuck" || access[0]["request_id"] != "stuck-1" {
		t.Errorf("access log %v, want one 503 record for /test/stuck", access)
	}
	want := `agentauthz_http_request_duration_seconds_count{method="GET",route="/test/stuck",status="503"} 1`
	if m := d.scrape(t); !strings.Contains(m, want) || strings.Contains(m, `route="/test/stuck",status="200"`) {
		t.Errorf("metrics lack %s (or count the late 200):\n%s", want, grepLines(m, "/test/stuck"))
	}
}

// The answer recorded by an httptest.ResponseRecorder stays the 503 once
// the late handler writes (the race detector checks nobody touches it).
// The handler runs on the serving goroutine, so ServeHTTP is still busy
// when the 503 is written and flushed at the deadline.
func TestDeadlineLateWritesNeverReachTheClient(t *testing.T) {
	d := newDeadlineServer(t, 50*time.Millisecond, nil)
	release := make(chan struct{})
	d.srv.Echo().GET("/test/stuck", func(c echo.Context) error {
		<-release
		c.Response().Header().Set("X-Late", "yes")
		c.Response().WriteHeader(http.StatusOK)
		_, _ = c.Response().Write([]byte(`{"allow":true}`))
		return nil
	})
	rec := &flushRecorder{ResponseRecorder: httptest.NewRecorder(), flushed: make(chan struct{})}
	served := make(chan struct{})
	go func() {
		defer close(served)
		d.srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/test/stuck", nil))
	}()
	select {
	case <-rec.flushed:
	case <-served:
		t.Fatal("ServeHTTP returned before the handler did")
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("no answer flushed at the deadline")
	}
	code, before, closes := rec.Code, rec.Body.String(), rec.Header().Get("Connection")
	close(release)
	<-served
	if code != http.StatusServiceUnavailable || closes != "close" {
		t.Errorf("at the deadline: %d %v %q", code, rec.Header(), before)
	}
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != before || strings.Contains(before, "allow") ||
		rec.Header().Get("X-Late") != "" {
		t.Errorf("recorder: %d %v %q (before the late write: %q)", rec.Code, rec.Header(), rec.Body, before)
	}
}

// flushRecorder reports the first Flush on flushed.
type flushRecorder struct {
	*httptest.ResponseRecorder
	once    sync.Once
	flushed chan struct{}
}

func (r *flushRecorder) Flush() {
	r.ResponseRecorder.Flush()
	r.once.Do(func() { close(r.flushed) })
}

// Handlers that finish in time are answered exactly as they wrote.
func TestDeadlinePassesTimelyAnswersThrough(t *testing.T) {
	d := newDeadlineServer(t, time.Second, nil)
	d.srv.Echo().POST("/test/created", func(c echo.Context) error {
		c.Response().Header().Set("X-Custom", "1")
		return c.JSONBlob(http.StatusCreated, []byte(`{"ok":true}`))
	})
	d.srv.Echo().GET("/test/empty", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	ts := httptest.NewServer(d.srv.Handler())
	defer ts.Close()
	res, err := http.Post(ts.URL+"/test/created", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || string(body) != `{"ok":true}` || res.Header.Get("X-Custom") != "1" ||
		res.ContentLength != int64(len(body)) || res.Header.Get("X-Request-Id") == "" {
		t.Errorf("got %d %v %q", res.StatusCode, res.Header, body)
	}
	res, err = http.Get(ts.URL + "/test/empty")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Errorf("204 route: %d", res.StatusCode)
	}
	res, err = http.Get(ts.URL + "/no/such/route")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown route: %d", res.StatusCode)
	}
}

// Panics are still recovered with a deadline in force: before the deadline
// as 500 internal, after it without touching the 503 already sent (and
// without taking the process down); http.ErrAbortHandler still aborts.
func TestDeadlineRecoversPanics(t *testing.T) {
	d := newDeadlineServer(t, 100*time.Millisecond, nil)
	release, panicked := make(chan struct{}), make(chan struct{})
	d.srv.Echo().GET("/test/panic", func(c echo.Context) error { panic("boom") })
	d.srv.Echo().GET("/test/late-panic", func(c echo.Context) error {
		defer close(panicked)
		<-release
		panic("late boom")
	})
	d.srv.Echo().GET("/test/abort", func(c echo.Context) error { panic(http.ErrAbortHandler) })
	ts := httptest.NewServer(d.srv.Handler())
	defer ts.Close()

	res, err := http.Get(ts.URL + "/test/panic")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), `"code":"internal"`) {
		t.Errorf("panic: %d %s", res.StatusCode, body)
	}

	res, err = http.Get(ts.URL + "/test/late-panic")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"code":"timeout"`) {
		t.Errorf("late panic: %d %s", res.StatusCode, body)
	}
	close(release)
	<-panicked
	waitFor(t, 5*time.Second, "late panic logged", func() bool {
		return len(d.records(t, "panic while serving request")) == 2
	})

	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("ErrAbortHandler: recovered %v, want http.ErrAbortHandler re-raised on the serving goroutine", p)
			}
		}()
		d.srv.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/test/abort", nil))
	}()
	if _, err := http.Get(ts.URL + "/test/abort"); err == nil {
		t.Error("ErrAbortHandler: the client got an answer, want an aborted connection")
	}
}

// Around the deadline the handler and the keeper race; every request gets
// exactly one whole answer (the handler's or the 503) and one access
// record with that status.
func TestDeadlineRaceAnswersEachRequestOnce(t *testing.T) {
	const timeout, n = 20 * time.Millisecond, 200
	d := newDeadlineServer(t, timeout, nil)
	d.srv.Echo().GET("/test/jitter", func(c echo.Context) error {
		time.Sleep(timeout - 5*time.Millisecond + time.Duration(rand.IntN(10_000))*time.Microsecond)
		return c.JSONBlob(http.StatusOK, []byte(`{"ok":true}`))
	})
	ts := httptest.NewServer(d.srv.Handler())
	defer ts.Close()
	var ok, timedOut atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", ts.URL+"/test/jitter", nil)
			req.Header.Set("X-Request-Id", fmt.Sprintf("jitter-%d", i))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			switch {
			case res.StatusCode == 200 && string(body) == `{"ok":true}`:
				ok.Add(1)
			case res.StatusCode == 503 && strings.Contains(string(body), `"code":"timeout"`):
				timedOut.Add(1)
			default:
				t.Errorf("request %d: %d %q", i, res.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d answered by the handler, %d by the deadline", ok.Load(), timedOut.Load())
	waitFor(t, 5*time.Second, "one access record per request", func() bool { return len(d.records(t, "request")) >= n })
	byStatus := map[float64]int64{}
	seen := map[any]bool{}
	for _, rec := range d.records(t, "request") {
		if seen[rec["request_id"]] {
			t.Errorf("request %v logged twice", rec["request_id"])
		}
		seen[rec["request_id"]] = true
		byStatus[rec["status"].(float64)]++
	}
	if byStatus[200] != ok.Load() || byStatus[503] != timedOut.Load() {
		t.Errorf("access log statuses %v, clients saw %d×200 %d×503", byStatus, ok.Load(), timedOut.Load())
	}
}

// /readyz answers within its budget when the check never returns, names
// the timed-out check, and runs one check at a time however many probes
// arrive; once the check answers, /readyz is 200 again.
func TestReadyzAnswersWithinItsBudget(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	d := newDeadlineServer(t, 10*time.Second, func(ctx context.Context) error {
		calls.Add(1)
		<-release // ignores ctx, like a ping on a frozen server
		return nil
	})
	ts := httptest.NewServer(d.srv.Handler())
	defer ts.Close()
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			res, err := http.Get(ts.URL + "/readyz")
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if took := time.Since(start); took > 1500*time.Millisecond {
				t.Errorf("/readyz took %s", took)
			}
			var got struct {
				Status string            `json:"status"`
				Checks map[string]string `json:"checks"`
			}
			_ = json.Unmarshal(body, &got)
			if res.StatusCode != 503 || got.Status != "unavailable" || got.Checks["ready"] != "timeout" {
				t.Errorf("/readyz: %d %s", res.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d readiness checks ran for 5 concurrent probes, want 1", n)
	}
	close(release)
	waitFor(t, 5*time.Second, "/readyz 200 after the check answers", func() bool {
		res, err := http.Get(ts.URL + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
