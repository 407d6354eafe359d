package authz

import (
	"errors"
	"fmt"
	"strings"

	"github.com/agentauthz/agentauthz/internal/policy"
)

// ErrUnavailable means the store or the policy engine could not answer; the
// caller must deny (HTTP 503).
var ErrUnavailable = errors.New("unavailable")

// ValidationError is malformed input: a stable code, the offending field and
// a message that never echoes secrets (HTTP 400).
type ValidationError struct {
	Code    string
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Message }

func invalid(code, field, format string, args ...any) error {
	return &ValidationError{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFoundError names what was not found (HTTP 404).
type NotFoundError struct {
	Code    string
	Message string
}

func (e *NotFoundError) Error() string { return e.Message }

func notFound(code, format string, args ...any) error {
	return &NotFoundError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ConflictError is a request that contradicts the current state: duplicate
// slug, inactive agent, the owner's implicit access (HTTP 409).
type ConflictError struct {
	Code    string
	Message string
}

func (e *ConflictError) Error() string { return e.Message }

func conflict(code, format string, args ...any) error {
	return &ConflictError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// DeniedError is the policy saying no to an ability (HTTP 403, or 401 for an
// anonymous caller). It carries the decision so callers can show why.
type DeniedError struct {
	Ability  string
	Decision policy.Decision
}

func (e *DeniedError) Error() string {
	msg := "not allowed to " + e.Ability
	if len(e.Decision.Reasons) > 0 {
		msg += ": " + strings.Join(e.Decision.Reasons, "; ")
	} else if len(e.Decision.DeniedBy) > 0 {
		msg += " (denied by " + strings.Join(e.Decision.DeniedBy, ", ") + ")"
	}
	return msg
}
