package main

import (
	"errors"

	"github.com/agentauthz/agentauthz/internal/authz"
)

// Exit codes: 0 ok, 1 failure, 2 usage (bad flags, arguments or values).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a command line that does not parse.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

// exitCode is the one table from errors to exit codes.
func exitCode(err error) int {
	var (
		u *usageError
		v *authz.ValidationError
	)
	switch {
	case errors.As(err, &u), errors.As(err, &v):
		return exitUsage
	default:
		return exitFailure
	}
}
