package store

import (
	"time"

	"github.com/pressly/goose/v3"
)

// dialect holds everything that differs between PostgreSQL and SQLite. The
// queries themselves are shared: they use "?" placeholders that sqlx rebinds
// for the connected database.
type dialect struct {
	// name appears in error messages and selects the migrations directory.
	name string
	// driver is the database/sql driver name.
	driver string
	// bindName is the driver name sqlx knows for this placeholder style
	// (modernc.org/sqlite registers "sqlite", which sqlx does not know).
	bindName string
	// goose is the migration dialect.
	goose goose.Dialect
	// timeArg encodes a timestamp as a query argument.
	timeArg func(time.Time) any
	// maxOpenConns bounds the connection pool; 0 leaves it unbounded.
	maxOpenConns int
	// touchQuery is TouchTokens' statement: its one parameter is a JSON
	// object from token id to time (sqliteTimeLayout text).
	touchQuery string
}

var postgresDialect = dialect{
	name:     "postgres",
	driver:   "postgres",
	bindName: "postgres",
	goose:    goose.DialectPostgres,
	timeArg:  postgresTime,
	// A few dozen connections per replica is plenty; the server is the
	// shared resource.
	maxOpenConns: 32,
	// The rows are locked first, in id order (ORDER BY is applied before
	// FOR UPDATE locks), so flushes by several replicas that share tokens
	// never lock two rows in opposite orders, whatever plan each gets
	// (without it, TestTouchFromReplicasNeverDeadlocks deadlocks).
	touchQuery: `WITH v AS (SELECT key::bigint AS id, value::timestamptz AS at FROM jsonb_each_text($1::jsonb)),
	     l AS (SELECT t.id FROM agent_tokens t JOIN v ON v.id = t.id ORDER BY t.id FOR UPDATE OF t)
	UPDATE agent_tokens AS t SET last_used_at = v.at
	  FROM v JOIN l ON l.id = v.id
	 WHERE t.id = v.id AND (t.last_used_at IS NULL OR t.last_used_at < v.at)`,
}

var sqliteDialect = dialect{
	name:     "sqlite",
	driver:   "sqlite",
	bindName: "sqlite3",
	goose:    goose.DialectSQLite3,
	timeArg:  sqliteTime,
	// SQLite has one writer at a time. One pooled connection serialises
	// this process's statements in Go instead of letting concurrent
	// writers race for the file lock; busy_timeout and BEGIN IMMEDIATE
	// (see sqliteDSN) cover other processes such as the CLI.
	maxOpenConns: 1,
	// The stored text is sqliteTimeLayout, so text comparison is
	// chronological; agent_tokens.id is the rowid, so each member of the
	// object is one rowid lookup. SQLite has one writer at a time: no lock
	// order to keep.
	touchQuery: `UPDATE agent_tokens SET last_used_at = v.value
	  FROM json_each(?) AS v
	 WHERE agent_tokens.id = CAST(v.key AS INTEGER) AND (agent_tokens.last_used_at IS NULL OR agent_tokens.last_used_at < v.value)`,
}

// sqliteTimeLayout is fixed width (always nine fractional digits, always
// "Z") so that SQLite's text comparison orders timestamps chronologically.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000000Z"

// normalTime is the form in which every timestamp is stored: UTC, truncated
// to microseconds (PostgreSQL's precision), so both stores round-trip the
// same value.
func normalTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// postgresTime passes a timestamp to lib/pq, which sends it as timestamptz.
func postgresTime(t time.Time) any { return normalTime(t) }

// sqliteTime encodes a timestamp as sortable UTC text.
func sqliteTime(t time.Time) any { return normalTime(t).Format(sqliteTimeLayout) }

// timeArg encodes a timestamp for the connected database.
func (s *SQL) timeArg(t time.Time) any { return s.d.timeArg(t) }

// nullTimeArg encodes an optional timestamp; nil becomes SQL NULL.
func (s *SQL) nullTimeArg(t *time.Time) any {
	if t == nil {
		return nil
	}
	return s.d.timeArg(*t)
}
