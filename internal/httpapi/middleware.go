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
					// keepDeadline has answered 503 and recorded it; this
					// answer went nowhere.
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
//   - The request runs in a goroutine as a complete second pass through
//     Echo (its own pooled echo.Context, routing, frame, handler), writing
//     into a deadlineWriter that buffers the whole answer.
//   - If that finishes in time, the buffer is copied to the client.
//   - If the deadline passes first, the writer is closed under its lock
//     (later writes fail with http.ErrHandlerTimeout and go nowhere), the
//     client gets 503 {"error":{"code":"timeout"}}, and that 503 is what
//     the access log and metrics record, once. The late pass keeps its own
//     echo.Context until it returns, so nothing it touches is shared with
//     another request; it is logged as discarded when it does return.
//
// Why not echo's middleware.Timeout: it runs the handler in a goroutine on
// the same echo.Context that Echo returns to its pool as soon as the
// middleware returns, so a late handler writes into a context another
// request may already hold (its own source warns about this). Why not
// http.TimeoutHandler, whose buffering this copies: its timeout answer is a
// fixed body without the API's JSON error shape, request id and
// Cache-Control, and it offers no hook to record the 503 in the access log
// and metrics instead of the late handler's status. Doing this as an Echo
// Pre middleware (rather than wrapping the http.Handler) keeps Echo's own
// Start, Shutdown and ListenerAddr working unchanged.

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

// keepDeadline serves r through Echo in a goroutine and answers w with its
// buffered answer, or with 503 timeout when RequestTimeout passes first.
func (s *Server) keepDeadline(w http.ResponseWriter, r *http.Request) {
	dw := deadlineWriters.Get().(*deadlineWriter)
	dw.start, dw.rid = time.Now(), requestID(r.Header.Get(headerRequestID))
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	inner := r.WithContext(context.WithValue(ctx, deadlineKey{}, dw))
	// The pass sends nil when done or what it panicked with. Buffered: a
	// pass that ends after the deadline never blocks, and its panic never
	// crashes the process.
	done := make(chan any, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				if p != http.ErrAbortHandler && dw.isExpired() {
					s.log.Error("panic after the request deadline", "request_id", dw.rid, "panic", fmt.Sprint(p))
				}
				done <- p
			}
		}()
		s.e.ServeHTTP(dw, inner)
		done <- nil
	}()
	var p any
	select {
	case p = <-done:
	case <-ctx.Done():
		if dw.expire() {
			s.answerTimeout(w, r, dw, ctx.Err())
			return // dw stays with the late pass: never reused
		}
		// The pass recorded its answer just as the deadline passed: it
		// returns at once, and its answer is the one logged.
		p = <-done
	}
	if p != nil {
		// frame recovers handler panics; what arrives here is
		// http.ErrAbortHandler or a panic outside frame. Re-raise it on
		// the serving goroutine so net/http aborts the connection.
		panic(p)
	}
	dw.copyTo(w, r.Method)
	if dw.buf.Cap() <= maxPooledAnswer {
		dw.reset()
		deadlineWriters.Put(dw)
	}
}

// maxPooledAnswer is the largest answer buffer kept for reuse.
const maxPooledAnswer = 64 << 10

// answerTimeout sends the 503 timeout in place of an answer that did not
// come in time, and records it in the access log and metrics.
func (s *Server) answerTimeout(w http.ResponseWriter, r *http.Request, dw *deadlineWriter, cause error) {
	latency, route := time.Since(dw.start), dw.routeName()
	h := w.Header()
	h.Set(headerRequestID, dw.rid)
	h.Set("Cache-Control", "no-store")
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusServiceUnavailable)
	} else {
		h.Set(echo.HeaderContentLength, strconv.Itoa(len(timeoutBody)))
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(timeoutBody)
	}
	s.log.Warn("request deadline exceeded; answered 503 without waiting for the handler",
		"request_id", dw.rid, "route", route, "err", cause)
	if s.cfg.AccessLog {
		// The principal and decision are the late pass's to know.
		s.writeAccess(r.Method, route, http.StatusServiceUnavailable, latency, dw.rid, "", "")
	}
	s.deps.Metrics.Request(r.Method, route, http.StatusServiceUnavailable, latency)
}

// deadlineWriter buffers one inner pass's answer until keepDeadline either
// copies it to the client or, at the deadline, expires it. The header map
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
	expired  bool // keepDeadline answered 503; writes go nowhere
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

func (dw *deadlineWriter) routeName() string {
	dw.mu.Lock()
	defer dw.mu.Unlock()
	return dw.route
}

// finish claims the answer for the pass: false when keepDeadline already
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

// expire claims the answer for keepDeadline: false when the pass already
// recorded its own.
func (dw *deadlineWriter) expire() bool {
	dw.mu.Lock()
	defer dw.mu.Unlock()
	if dw.finished {
		return false
	}
	dw.expired = true
	return true
}

func (dw *deadlineWriter) isExpired() bool {
	dw.mu.Lock()
	defer dw.mu.Unlock()
	return dw.expired
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
