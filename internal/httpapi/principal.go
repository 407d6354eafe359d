package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/agentauthz/agentauthz/internal/principal"
)

// resolvePrincipal runs the resolver chain on every /v1 request. A claimed
// credential that fails stops the request (401/403, never a fallback); a
// client that failed too often is refused with 429 before its credential is
// looked at; a store failure during resolution stops it with 503 (fail
// closed); no credential at all leaves the request without a principal, and
// handlers that need one answer 401.
func resolvePrincipal(chain principal.Chain, log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, err := chain.Resolve(c.Request())
			var (
				authErr   *principal.AuthError
				throttled *principal.ThrottledError
			)
			switch {
			case err == nil:
				c.Set(ctxPrincipal, p)
			case errors.Is(err, principal.ErrNoPrincipal):
			case errors.As(err, &throttled):
				return tooManyFailures(c, throttled)
			case errors.As(err, &authErr):
				return credentialFailure(authErr)
			default:
				log.Error("principal resolution failed; denying", "request_id", c.Response().Header().Get(headerRequestID), "err", err)
				return &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the caller's credentials cannot be checked right now; try again"}
			}
			return next(c)
		}
	}
}

// credentialFailure answers a claimed credential that failed. A bearer token
// (the Authorization header) gets RFC 6750's error="invalid_token"; a
// trusted proxy's header is no token, so its failure says which header
// failed and how, under a plain Bearer challenge.
func credentialFailure(e *principal.AuthError) *apiError {
	if e.Source == principal.SourceAuthorization {
		return invalidToken(e)
	}
	what := "the proxy's user header"
	if e.Source == principal.SourceProxyAudience {
		what = "the proxy's audience header"
	}
	if e.Header != "" {
		what += " (" + e.Header + ")"
	}
	var msg string
	switch e.Reason {
	case principal.ReasonUnknown:
		msg = what + " names no user"
	case principal.ReasonUserDisabled:
		msg = "the user named by " + what + " is disabled"
	case principal.ReasonMalformed:
		msg = what + " is malformed"
		if e.Detail != "" {
			msg += ": " + e.Detail
		}
	default:
		msg = what + " was rejected"
	}
	msg += " (" + e.Reason + ")"
	return &apiError{Status: http.StatusUnauthorized, Code: "invalid_proxy_identity", Message: msg, Authenticate: "Bearer"}
}

// tooManyFailures is the 429 of a throttled client, with Retry-After in
// whole seconds (rounded up, at least 1).
func tooManyFailures(c echo.Context, e *principal.ThrottledError) *apiError {
	secs := int64((e.RetryAfter + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	retry := strconv.FormatInt(secs, 10)
	c.Response().Header().Set("Retry-After", retry)
	return &apiError{Status: http.StatusTooManyRequests, Code: "too_many_auth_failures",
		Message: "too many failed authentications from this client; retry after " + retry + " s"}
}

// caller returns the request's principal or the 401 that asks for one.
func caller(c echo.Context) (*principal.Principal, error) {
	if p := principalOf(c); p != nil {
		return p, nil
	}
	return nil, errAuthRequired
}
