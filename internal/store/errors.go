package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/agentauthz/agentauthz/internal/model"
)

// Database errors are matched by code, never by message: *pq.Error carries a
// SQLSTATE, *sqlite.Error an extended result code.

// isUniqueViolation reports whether err is a unique or primary key violation.
func isUniqueViolation(err error) bool {
	if e := pqError(err); e != nil {
		return e.Code == pqerror.UniqueViolation
	}
	if code, ok := sqliteCode(err); ok {
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isForeignKeyViolation reports whether err says a referenced row is missing.
func isForeignKeyViolation(err error) bool {
	if e := pqError(err); e != nil {
		return e.Code == pqerror.ForeignKeyViolation
	}
	if code, ok := sqliteCode(err); ok {
		return code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// isCheckViolation reports whether err is a CHECK constraint violation (an
// unknown status value).
func isCheckViolation(err error) bool {
	if e := pqError(err); e != nil {
		return e.Code == pqerror.CheckViolation
	}
	if code, ok := sqliteCode(err); ok {
		return code == sqlite3.SQLITE_CONSTRAINT_CHECK
	}
	return false
}

// pqError returns the PostgreSQL error inside err, or nil.
func pqError(err error) *pq.Error {
	var e *pq.Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// sqliteCode returns the extended result code of the SQLite error inside err.
func sqliteCode(err error) (int, bool) {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}

// dbError turns an error from the database into a domain error that says
// which operation failed. Driver errors are kept out of the error chain (so
// no caller comes to depend on them) but their text is kept in the message
// for the unavailable case, where it is the only clue for an operator.
func dbError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: %s: %w", op, model.ErrNotFound)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("store: %s: %w: %w", op, model.ErrUnavailable, err)
	case isUniqueViolation(err):
		return fmt.Errorf("store: %s: %w", op, model.ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("store: %s: referenced record: %w", op, model.ErrNotFound)
	case isCheckViolation(err):
		return fmt.Errorf("store: %s: %w", op, model.ErrInvalid)
	default:
		return fmt.Errorf("store: %s: %w: %v", op, model.ErrUnavailable, err)
	}
}

// corruptRow reports a stored value the store cannot decode; it is not the
// caller's fault, so it is ErrUnavailable.
func corruptRow(what string, err error) error {
	return fmt.Errorf("store: %s: %w: undecodable stored value: %v", what, model.ErrUnavailable, err)
}
