package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// healthz answers 200 while the process serves HTTP.
func healthz() echo.HandlerFunc {
	body := []byte(`{"status":"ok"}` + "\n")
	return func(c echo.Context) error {
		return c.JSONBlob(http.StatusOK, body)
	}
}

// readyCheck is what a readiness error may additionally say: the outcome
// of each named check ("store", "policy"). Ready functions that return an
// error implementing it get their checks shown; others show one "ready"
// check. Raw error text is logged, never served.
type readyCheck interface {
	Checks() map[string]string
}

// servingReport is a Ready function's answer that is not a failure: the
// server is ready and says how ("ok", or "degraded": correct, only
// slower), with its checks; Serving returns "" when it is not ready. It
// travels as the error value so that Ready stays one call returning one
// error.
type servingReport interface {
	readyCheck
	Serving() string
}

// readyBudget bounds one readiness check: /readyz answers within it even
// when the check (a store ping on a frozen server) never returns.
const readyBudget = 800 * time.Millisecond

// errReadyTimeout is the answer when the check does not return in time.
// The Ready function is one call, so the check that timed out is named
// "ready", with the outcome "timeout".
var errReadyTimeout = readyTimeout{}

type readyTimeout struct{}

func (readyTimeout) Error() string {
	return fmt.Sprintf("readiness check did not return within %s", readyBudget)
}
func (readyTimeout) Checks() map[string]string { return map[string]string{"ready": "timeout"} }

// readyz answers 200 when ready (the store pings and the engine has an
// active bundle) and 503 otherwise, within budget.
func readyz(ready func(ctx context.Context) error, log *slog.Logger) echo.HandlerFunc {
	return readyzWithin(ready, readyBudget, log)
}

func readyzWithin(ready func(ctx context.Context) error, budget time.Duration, log *slog.Logger) echo.HandlerFunc {
	probe := &readiness{check: ready, budget: budget, log: log}
	return func(c echo.Context) error {
		if ready == nil {
			return c.JSON(http.StatusOK, map[string]any{"status": "ok"})
		}
		err := probe.wait(c.Request().Context())
		if err == nil {
			return c.JSON(http.StatusOK, map[string]any{"status": "ok"})
		}
		if s, ok := err.(servingReport); ok && s.Serving() != "" {
			noStore(c)
			return c.JSON(http.StatusOK, map[string]any{"status": s.Serving(), "checks": s.Checks()})
		}
		log.Warn("not ready", "err", err)
		checks := map[string]string{"ready": "unavailable"}
		if rc, ok := err.(readyCheck); ok {
			checks = rc.Checks()
		}
		noStore(c)
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": checks})
	}
}

// readiness runs the Ready function with its own budget, at most one run
// at a time: probes that arrive while a run is in flight wait on it (each
// within its own budget) instead of piling more blocked calls onto a store
// that does not answer.
type readiness struct {
	check  func(ctx context.Context) error
	budget time.Duration
	log    *slog.Logger

	mu      sync.Mutex
	running *readyRun
}

type readyRun struct {
	done chan struct{}
	err  error // set before done closes
}

// wait returns the outcome of the current run, starting one if none is in
// flight, or errReadyTimeout after budget (or when ctx ends first).
func (r *readiness) wait(ctx context.Context) error {
	run := r.start(ctx)
	timer := time.NewTimer(r.budget)
	defer timer.Stop()
	select {
	case <-run.done:
		return run.err
	case <-timer.C:
	case <-ctx.Done():
	}
	return errReadyTimeout
}

func (r *readiness) start(ctx context.Context) *readyRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running != nil {
		return r.running
	}
	run := &readyRun{done: make(chan struct{})}
	r.running = run
	// The run outlives the request that started it, so it keeps the
	// request's values but not its cancellation; the budget bounds it for
	// a Ready function that honours its context.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.budget)
	go func() {
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				r.log.Error("panic in readiness check", "panic", fmt.Sprint(p))
				run.err = errors.New("readiness check panicked")
			}
			r.mu.Lock()
			r.running = nil
			r.mu.Unlock()
			close(run.done)
		}()
		run.err = r.check(cctx)
	}()
	return run
}
