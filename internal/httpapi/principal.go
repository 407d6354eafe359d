package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/agentauthz/agentauthz/internal/principal"
)

// resolvePrincipal runs the resolver chain on every /v1 request. A claimed
// credential that fails stops the request (401/403, never a fallback); a
// store failure during resolution stops it with 503 (fail closed); no
// credential at all leaves the request without a principal, and handlers
// that need one answer 401.
func resolvePrincipal(chain principal.Chain, log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, err := chain.Resolve(c.Request())
			var authErr *principal.AuthError
			switch {
			case err == nil:
				c.Set(ctxPrincipal, p)
			case errors.Is(err, principal.ErrNoPrincipal):
			case errors.As(err, &authErr):
				return invalidToken(authErr)
			default:
				log.Error("principal resolution failed; denying", "request_id", c.Response().Header().Get(headerRequestID), "err", err)
				return &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the caller's credentials cannot be checked right now; try again"}
			}
			return next(c)
		}
	}
}

// caller returns the request's principal or the 401 that asks for one.
func caller(c echo.Context) (*principal.Principal, error) {
	if p := principalOf(c); p != nil {
		return p, nil
	}
	return nil, errAuthRequired
}
