package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// headerRequestID carries the request id in and out.
const headerRequestID = "X-Request-Id"

// ctxPrincipal is the echo context key of the resolved caller.
const ctxPrincipal = "httpapi.principal"

// ctxDecisionID is the echo context key of the request's decision id, if
// it made a runtime decision.
const ctxDecisionID = "httpapi.decision_id"

func decisionIDOf(c echo.Context) string {
	id, _ := c.Get(ctxDecisionID).(string)
	return id
}

// frame is the one global middleware: request id, panic recovery, the
// body size limit, central error rendering and the access log. One layer
// instead of five keeps the hot path short. The per-request deadline is
// kept outside it, by keepDeadline, which hands frame the request id and
// start time and gets the route back (see deadlineWriter).
func (s *Server) frame() echo.MiddlewareFunc {
	limit, accessLog, m := s.cfg.BodyLimit, s.cfg.AccessLog, s.deps.Metrics
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			req := c.Request()
			dw, _ := req.Context().Value(deadlineKey{}).(*deadlineWriter)
			var (
				start time.Time
				rid   string
			)
			if dw != nil {
				start, rid = dw.start, dw.rid
				dw.setRoute(c.Path())
			} else { // no request deadline configured
				start, rid = time.Now(), requestID(req.Header.Get(headerRequestID))
			}
			c.Response().Header().Set(headerRequestID, rid)
			defer func() {
				if r := recover(); r != nil {
					if r == http.ErrAbortHandler {
						panic(r)
					}
					buf := make([]byte, 4<<10)
					buf = buf[:runtime.Stack(buf, false)]
					s.log.Error("panic while serving request", "request_id", rid, "panic", fmt.Sprint(r), "stack", string(buf))
					c.Error(fmt.Errorf("panic: %v", r))
				}
				err = nil
				if dw != nil && !dw.finish() {
					// keepDeadline's keeper has answered 503 and
					// recorded it; this answer went nowhere.
					s.log.Warn("request finished after its deadline; its answer was discarded",
						"request_id", rid, "route", c.Path(), "status", c.Response().Status, "latency", time.Since(start))
					return
				}
				if accessLog {
					s.logAccess(c, rid, start)
				}
				m.Request(req.Method, c.Path(), c.Response().Status, time.Since(start))
			}()
			if req.ContentLength > limit {
				c.Error(errBodyTooLarge(limit))
				return nil
			}
			if herr := next(c); herr != nil {
				c.Error(herr)
			}
			return nil
		}
	}
}

// logAccess writes the one access record of a request. It names the route
// template, never the raw path (which may carry identifiers), and never a
// header: the Authorization header does not travel.
func (s *Server) logAccess(c echo.Context, rid string, start time.Time) {
	who := ""
	if p := principalOf(c); p != nil {
		who = p.ID
	}
	s.writeAccess(c.Request().Method, c.Path(), c.Response().Status, time.Since(start), rid, who, decisionIDOf(c))
}

func (s *Server) writeAccess(method, route string, status int, latency time.Duration, rid, principal, decisionID string) {
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("method", method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Duration("latency", latency),
		slog.String("request_id", rid),
		slog.String("principal", principal),
		slog.String("decision_id", decisionID),
	)
}

// Request ids: a client-supplied id is kept when it is short and plain;
// otherwise a process-unique id is minted from a random prefix and a counter
// (no entropy read per request).
var (
	ridPrefix  = newRIDPrefix()
	ridCounter atomic.Uint64
)

func newRIDPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func requestID(in string) string {
	if validRequestID(in) {
		return in
	}
	var buf [40]byte
	out := append(buf[:0], ridPrefix...)
	out = append(out, '-')
	out = strconv.AppendUint(out, ridCounter.Add(1), 36)
	return string(out)
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// The request deadline.
//
// A context deadline alone does not bound a request: a store call blocked
// in lib/pq on a frozen server ignores its context (lib/pq cancels through
// a second connection and keeps waiting on the first). So keepDeadline
// answers the client itself when the deadline passes, whether or not the
// handler has returned:
//
//   - The request runs as a complete second pass through Echo (its own
//     pooled echo.Context, routing, frame, handler) on the serving
//     goroutine itself, writing into a deadlineWriter that buffers the
//     whole answer. Running it there, not on a goroutine of its own, keeps
//     the deep stack of a policy evaluation on net/http's long-lived
//     connection goroutine instead of growing a fresh stack per request.
//   - A keeper registered with context.AfterFunc runs when the request
//     context ends (the deadline, or the client going away).
//   - If the pass finishes first, it claims the answer (finish, in frame)
//     and the buffer is copied to the client; the keeper is stopped.
//   - If the keeper comes first, it closes the writer under its lock
//     (later writes fail with http.ErrHandlerTimeout and go nowhere),
//     writes 503 {"error":{"code":"timeout"}} to the client and flushes
//     it, all under that lock, while the handler may still be blocked; that
//     503 is what the access log and metrics record, once. The pass keeps
//     the serving goroutine until it returns, and is logged as discarded
//     when it does. The 503 asks HTTP/1 clients to close the connection,
//     which stays busy until then (and so that net/http never reads the
//     request body on the keeper's behalf).
//
// The real http.ResponseWriter is touched by the keeper only under the
// writer's lock and only if the pass has not claimed the answer; the
// serving goroutine touches it only after taking that lock (finish) and
// after net/http resumes it when ServeHTTP returns. The lock orders the
// two.
//
// Why not echo's middleware.Timeout: it runs the handler in a goroutine on
// the same echo.Context that Echo returns to its pool as soon as the
// middleware returns, so a late handler writes into a context another
// request may already hold (its own source warns about this). Why not
// http.TimeoutHandler, whose buffering this copies: its timeout answer is a
// fixed body without the API's JSON error shape, request id and
// Cache-Control, it offers no hook to record the 503 in the access log and
// metrics instead of the late handler's status, and it runs every handler
// on a new goroutine. Doing this as an Echo Pre middleware (rather than
// wrapping the http.Handler) keeps Echo's own Start, Shutdown and
// ListenerAddr working unchanged.

// deadlineKey marks the inner pass's request context; its value is the
// pass's *deadlineWriter.
type deadlineKey struct{}

// timeoutBody is the 503 sent when the deadline passes: the same error as
// toAPIError renders for context.DeadlineExceeded.
var timeoutBody = func() []byte {
	b, err := json.Marshal(errorBody{Error: errorObject{Code: "timeout", Message: "the request did not finish within its deadline"}})
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}()

// deadline is the Pre middleware that keeps the request deadline. The
// outer pass hands the request to keepDeadline; the inner pass, marked by
// deadlineKey, goes on to routing and the handlers.
func (s *Server) deadline() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.Context().Value(deadlineKey{}) != nil {
				return next(c)
			}
			s.keepDeadline(c.Response().Writer, req)
			return nil
		}
	}
}

// keepDeadline serves r through Echo on the calling goroutine and answers
// w with its buffered answer, unless the keeper has answered 503 timeout
// first because RequestTimeout passed (or the client went away).
func (s *Server) keepDeadline(w http.ResponseWriter, r *http.Request) {
	dw := deadlineWriters.Get().(*deadlineWriter)
	dw.start, dw.rid = time.Now(), requestID(r.Header.Get(headerRequestID))
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { s.answerTimeout(w, r, dw, ctx.Err()) })
	inner := r.WithContext(context.WithValue(ctx, deadlineKey{}, dw))
	returned := false
	defer func() {
		if returned {
			return
		}
		// frame recovers handler panics; what unwinds to here is
		// http.ErrAbortHandler, a panic outside frame, or
		// runtime.Goexit (p == nil).
		p := recover()
		stop()
		if dw.finish() || p == http.ErrAbortHandler {
			// The keeper has not answered (and now never will), or the
			// handler wants the connection aborted: re-raise it so
			// net/http aborts the connection.
			if p != nil {
				panic(p)
			}
			return
		}
		// The keeper has answered 503 and recorded it.
		if p != nil {
			s.log.Error("panic after the request deadline", "request_id", dw.rid, "panic", fmt.Sprint(p))
		}
	}()
	s.e.ServeHTTP(dw, inner)
	returned = true
	stopped := stop()
	if !dw.finish() {
		// The keeper has answered 503 (frame logged this answer as
		// discarded). Rare: dw is left to the garbage collector.
		return
	}
	dw.copyTo(w, r.Method)
	// A keeper that could not be stopped has started and will find the
	// answer claimed; it may still read dw, so dw is not reused.
	if stopped && dw.buf.Cap() <= maxPooledAnswer {
		dw.reset()
		deadlineWriters.Put(dw)
	}
}

// maxPooledAnswer is the largest answer buffer kept for reuse.
const maxPooledAnswer = 64 << 10

// answerTimeout is the keeper: when the pass has not claimed the answer, it
// expires dw and sends the 503 timeout in place of the answer that did not
// come in time, flushes it to the client (the handler may never return),
// and records it in the access log and metrics. It holds dw's lock
// throughout, so the pass cannot claim the answer meanwhile and the serving
// goroutine resumes w only after the keeper is done with it.
func (s *Server) answerTimeout(w http.ResponseWriter, r *http.Request, dw *deadlineWriter, cause error) {
	dw.mu.Lock()
	defer dw.mu.Unlock()
	if dw.finished {
		return
	}
	dw.expired = true
	latency, route := time.Since(dw.start), dw.route
	h := w.Header()
	h.Set(headerRequestID, dw.rid)
	h.Set("Cache-Control", "no-store")
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	if r.ProtoMajor == 1 {
		// The connection is busy until the handler returns; and this
		// keeps net/http from draining the request body here.
		h.Set(echo.HeaderConnection, "close")
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusServiceUnavailable)
	} else {
		h.Set(echo.HeaderContentLength, strconv.Itoa(len(timeoutBody)))
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(timeoutBody)
	}
	_ = http.NewResponseController(w).Flush()
	s.log.Warn("request deadline exceeded; answered 503 without waiting for the handler",
		"request_id", dw.rid, "route", route, "err", cause)
	if s.cfg.AccessLog {
		// The principal and decision are the late pass's to know.
		s.writeAccess(r.Method, route, http.StatusServiceUnavailable, latency, dw.rid, "", "")
	}
	s.deps.Metrics.Request(r.Method, route, http.StatusServiceUnavailable, latency)
}

// deadlineWriter buffers one inner pass's answer until keepDeadline
// copies it to the client or, at the deadline, the keeper expires it. The header map
// belongs to the pass until it is done; everything else is under mu.
type deadlineWriter struct {
	rid   string
	start time.Time
	h     http.Header

	mu       sync.Mutex
	buf      bytes.Buffer
	code     int
	route    string
	finished bool // the pass has recorded its own answer (frame)
	expired  bool // the keeper answered 503; writes go nowhere
}

// deadlineWriters recycles the writers of passes that finished in time.
var deadlineWriters = sync.Pool{New: func() any { return &deadlineWriter{h: make(http.Header)} }}

// reset readies a writer whose pass is done and answered for reuse.
func (dw *deadlineWriter) reset() {
	clear(dw.h)
	dw.buf.Reset()
	dw.code, dw.route, dw.finished, dw.expired = 0, "", false, false
}

func (dw *deadlineWriter) Header() http.Header { return dw.h }

func (dw *deadlineWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code)) // as net/http does
	}
	dw.mu.Lock()
	defer dw.mu.Unlock()
	if dw.expired || dw.code != 0 {
		return
	}
	dw.code = code
}

func (dw *deadlineWriter) Write(p []byte) (int, error) {
	dw.mu.Lock()
	defer dw.mu.Unlock()
	if dw.expired {
		return 0, http.ErrHandlerTimeout
	}
	if dw.code == 0 {
		dw.code = http.StatusOK
	}
	return dw.buf.Write(p)
}

// setRoute records the matched route template for the timeout record.
func (dw *deadlineWriter) setRoute(route string) {
	dw.mu.Lock()
	dw.route = route
	dw.mu.Unlock()
}

// finish claims the answer for the pass: false when the keeper already
// answered 503 (the pass must not log or count the request).
func (dw *deadlineWriter) finish() bool {
	dw.mu.Lock()
	defer dw.mu.Unlock()
	if dw.expired {
		return false
	}
	dw.finished = true
	return true
}

// copyTo sends the buffered answer; only after the pass is done.
func (dw *deadlineWriter) copyTo(w http.ResponseWriter, method string) {
	dst := w.Header()
	for k, vv := range dw.h {
		dst[k] = vv
	}
	code := dw.code
	if code == 0 {
		code = http.StatusOK
	}
	if method != http.MethodHead && code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified &&
		dst.Get(echo.HeaderContentLength) == "" {
		dst.Set(echo.HeaderContentLength, strconv.Itoa(dw.buf.Len()))
	}
	w.WriteHeader(code)
	if dw.buf.Len() > 0 {
		_, _ = w.Write(dw.buf.Bytes())
	}
}
