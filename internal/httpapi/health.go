package httpapi

import (
	"context"
	"log/slog"
	"net/http"

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

// readyz answers 200 when ready (the store pings and the engine has an
// active bundle) and 503 otherwise.
func readyz(ready func(ctx context.Context) error, log *slog.Logger) echo.HandlerFunc {
	return func(c echo.Context) error {
		if ready == nil {
			return c.JSON(http.StatusOK, map[string]any{"status": "ok"})
		}
		err := ready(c.Request().Context())
		if err == nil {
			return c.JSON(http.StatusOK, map[string]any{"status": "ok"})
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
