package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
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
// per-request deadline, the body size limit, central error rendering and
// the access log. One layer instead of five keeps the hot path short.
func (s *Server) frame() echo.MiddlewareFunc {
	limit, timeout, accessLog, m := s.cfg.BodyLimit, s.cfg.RequestTimeout, s.cfg.AccessLog, s.deps.Metrics
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			start := time.Now()
			req := c.Request()
			rid := requestID(req.Header.Get(headerRequestID))
			c.Response().Header().Set(headerRequestID, rid)
			if timeout > 0 {
				ctx, cancel := context.WithTimeout(req.Context(), timeout)
				defer cancel()
				c.SetRequest(req.WithContext(ctx))
			}
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
				if accessLog {
					s.logAccess(c, rid, start)
				}
				m.Request(req.Method, c.Path(), c.Response().Status, time.Since(start))
				err = nil
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
	req := c.Request()
	who := ""
	if p := principalOf(c); p != nil {
		who = p.ID
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("method", req.Method),
		slog.String("route", c.Path()),
		slog.Int("status", c.Response().Status),
		slog.Duration("latency", time.Since(start)),
		slog.String("request_id", rid),
		slog.String("principal", who),
		slog.String("decision_id", decisionIDOf(c)),
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
