package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// apiError is an error already decided for the wire: status, stable code,
// message, and the optional field, denial layers and WWW-Authenticate
// challenge. Messages never carry secrets.
type apiError struct {
	Status       int
	Code         string
	Message      string
	Field        string
	DeniedBy     []string
	Authenticate string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// errorBody is the one error shape: {"error": {...}}.
type errorBody struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Code     string   `json:"code"`
	Message  string   `json:"message"`
	Field    string   `json:"field,omitempty"`
	DeniedBy []string `json:"denied_by,omitempty"`
}

func badRequest(code, field, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

func errBodyTooLarge(limit int64) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: fmt.Sprintf("request body is larger than %d bytes", limit)}
}

var (
	errAuthRequired = &apiError{Status: http.StatusUnauthorized, Code: "authentication_required",
		Message: "this operation needs an authenticated caller", Authenticate: "Bearer"}
	errUnsupportedMedia = &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
		Message: "the request body must be sent as Content-Type: application/json"}
	errEmptyBody = &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "the request body is empty; a JSON object is required"}
	errNotObject = &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "the request body must be a JSON object"}
	errTrailing  = &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Message: "the request body has data after the JSON object"}
)

// authMessages explain why a claimed bearer token was refused. They name the
// reason, never the token.
var authMessages = map[string]string{
	principal.ReasonMalformed:     "the bearer token is malformed",
	principal.ReasonChecksum:      "the bearer token failed its checksum",
	principal.ReasonUnknown:       "the bearer token is unknown",
	principal.ReasonRevoked:       "the bearer token has been revoked",
	principal.ReasonExpired:       "the bearer token has expired",
	principal.ReasonOwnerMissing:  "the owner of the token's agent no longer exists",
	principal.ReasonOwnerDisabled: "the owner of the token's agent is disabled",
	principal.ReasonAgentInactive: "the token's agent is inactive",
	principal.ReasonUserDisabled:  "the user is disabled",
	principal.ReasonUnrecognized: "the Authorization header carries credentials this server does not accept " +
		"(is the token prefix right?); send none to act anonymously",
}

// toAPIError is THE mapping table from every error the API can meet to its
// status and stable code. p is the caller (nil when none), which decides
// whether a policy denial is 401 or 403.
func (s *Server) toAPIError(err error, p *principal.Principal) *apiError {
	var (
		ae       *apiError
		ve       *authz.ValidationError
		nf       *authz.NotFoundError
		ce       *authz.ConflictError
		de       *authz.DeniedError
		authErr  *principal.AuthError
		he       *echo.HTTPError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ve):
		return &apiError{Status: http.StatusBadRequest, Code: ve.Code, Field: ve.Field, Message: ve.Message}
	case errors.As(err, &nf):
		return &apiError{Status: http.StatusNotFound, Code: nf.Code, Message: nf.Message}
	case errors.As(err, &ce):
		return &apiError{Status: http.StatusConflict, Code: ce.Code, Message: ce.Message}
	case errors.As(err, &de):
		if p == nil || p.Kind == principal.KindAnonymous {
			return errAuthRequired
		}
		deniedBy := de.Decision.DeniedBy
		if deniedBy == nil {
			deniedBy = []string{}
		}
		return &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: de.Error(), DeniedBy: deniedBy}
	case errors.As(err, &authErr):
		return invalidToken(authErr)
	case errors.Is(err, authz.ErrUnavailable):
		s.log.Error("dependency unavailable", "err", err)
		return &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the service cannot answer right now; try again"}
	case errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("request deadline exceeded", "err", err)
		return &apiError{Status: http.StatusServiceUnavailable, Code: "timeout", Message: "the request did not finish within its deadline"}
	case errors.As(err, &tooLarge):
		return errBodyTooLarge(tooLarge.Limit)
	case errors.As(err, &he):
		return fromEchoError(he)
	}
	s.log.Error("internal error", "err", err)
	return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
}

// invalidToken is the answer to a claimed credential that failed: 401 (403
// for an inactive agent) with a Bearer challenge. It never falls back.
func invalidToken(e *principal.AuthError) *apiError {
	msg, ok := authMessages[e.Reason]
	if !ok {
		msg = "the bearer token was rejected"
	}
	msg += " (" + e.Reason + ")"
	out := &apiError{Status: http.StatusUnauthorized, Code: "invalid_token", Message: msg,
		Authenticate: `Bearer error="invalid_token", error_description="` + msg + `"`}
	if e.Forbidden {
		out.Status, out.Code = http.StatusForbidden, "agent_inactive"
	}
	return out
}

// fromEchoError maps the router's and echo's own errors.
func fromEchoError(he *echo.HTTPError) *apiError {
	switch he.Code {
	case http.StatusNotFound:
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such route"}
	case http.StatusMethodNotAllowed:
		return &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "this route does not accept that method"}
	case http.StatusRequestEntityTooLarge:
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: "request body is too large"}
	case http.StatusUnsupportedMediaType:
		return errUnsupportedMedia
	}
	code := strings.ReplaceAll(strings.ToLower(http.StatusText(he.Code)), " ", "_")
	if code == "" || he.Code >= 500 {
		return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
	return &apiError{Status: he.Code, Code: code, Message: http.StatusText(he.Code)}
}

// jsonError classifies a decoding failure of a request body; prefix names
// the enclosing field for nested documents ("tool_policy").
func jsonError(err error, prefix string) *apiError {
	var (
		syntax    *json.SyntaxError
		typ       *json.UnmarshalTypeError
		tooLarge  *http.MaxBytesError
		bodyLimit *apiError
	)
	switch {
	case errors.As(err, &bodyLimit):
		return bodyLimit
	case errors.As(err, &tooLarge):
		return errBodyTooLarge(tooLarge.Limit)
	case errors.As(err, &syntax):
		return badRequest("invalid_json", "", "the request body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return badRequest("invalid_json", "", "the request body ends before the JSON object does")
	case errors.As(err, &typ):
		field := joinField(prefix, typ.Field)
		if field == "" {
			return errNotObject
		}
		return badRequest("invalid_field", field, "field %q must be %s, not %s", field, jsonTypeName(typ.Type.Kind().String()), typ.Value)
	}
	if name, ok := unknownField(err); ok {
		field := joinField(prefix, name)
		return badRequest("unknown_field", field, "unknown field %q", field)
	}
	return badRequest("invalid_json", "", "the request body is not valid JSON")
}

// unknownField recognises DisallowUnknownFields' error. encoding/json offers
// no typed error for it, so this is the one place that reads its text.
func unknownField(err error) (string, bool) {
	const marker = `json: unknown field "`
	msg := err.Error()
	if !strings.HasPrefix(msg, marker) {
		return "", false
	}
	return strings.TrimSuffix(strings.TrimPrefix(msg, marker), `"`), true
}

func joinField(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	}
	return prefix + "." + field
}

// jsonTypeName names a Go kind the way a JSON client thinks of it.
func jsonTypeName(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "of another type"
}

// handleError is Echo's HTTPErrorHandler: it renders every error through
// the one table above.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae := s.toAPIError(err, principalOf(c))
	h := c.Response().Header()
	if ae.Authenticate != "" {
		h.Set(echo.HeaderWWWAuthenticate, ae.Authenticate)
	}
	h.Set("Cache-Control", "no-store")
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.Status)
		return
	}
	body := errorBody{Error: errorObject{Code: ae.Code, Message: ae.Message, Field: ae.Field, DeniedBy: ae.DeniedBy}}
	if err := c.JSON(ae.Status, body); err != nil {
		s.log.Warn("writing error response failed", "err", err)
	}
}
