package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/agentauthz/agentauthz/internal/model"
)

// SQL is the one sqlx implementation of Store, serving PostgreSQL and
// SQLite alike.
type SQL struct {
	db  *sqlx.DB
	d   dialect
	url string // redacted, for messages
	now func() time.Time

	// resolve is the hot-path lookup, prepared once (see resolveStmt).
	resolveMu sync.Mutex
	resolve   atomic.Pointer[sqlx.Stmt]
}

var _ model.Store = (*SQL)(nil)

// sqlitePragmas are appended to every SQLite DSN: enforce foreign keys, use
// WAL so readers never block the writer, wait up to 5s for another
// process's lock, and take the write lock when a transaction begins (a
// deferred transaction that upgrades to a writer fails at once with
// SQLITE_BUSY instead of waiting).
const sqlitePragmas = "_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate"

// Open connects to the database named by rawURL and checks that it answers.
// postgres:// and postgresql:// URLs use lib/pq; sqlite:PATH, sqlite://PATH,
// file:PATH and bare paths ending in .db use modernc.org/sqlite. It does not
// migrate: call Migrate. Errors name the URL without its password.
func Open(ctx context.Context, rawURL string) (*SQL, error) {
	redacted := RedactURL(rawURL)
	d, dsn, err := parseDatabaseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", redacted, err)
	}
	var sqlDB *sql.DB
	if d.name == postgresDialect.name {
		// Dials with a connect timeout, keepalive and TCP_USER_TIMEOUT
		// (see dial.go) so a dead server is noticed and its connections
		// replaced.
		sqlDB, err = openPostgres(dsn)
	} else {
		sqlDB, err = sql.Open(d.driver, dsn)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w: %s", redacted, model.ErrUnavailable, scrubPassword(err, rawURL))
	}
	if d.maxOpenConns > 0 {
		sqlDB.SetMaxOpenConns(d.maxOpenConns)
		sqlDB.SetMaxIdleConns(d.maxOpenConns)
	}
	s := &SQL{db: sqlx.NewDb(sqlDB, d.bindName), d: d, url: redacted, now: time.Now}
	if err := s.db.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("store: open %s: %w: %s", redacted, model.ErrUnavailable, scrubPassword(err, rawURL))
	}
	return s, nil
}

// parseDatabaseURL picks the dialect for rawURL and builds the driver DSN.
func parseDatabaseURL(rawURL string) (dialect, string, error) {
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		u, err := url.Parse(rawURL)
		if err != nil || u.Host == "" {
			// The parse error quotes the whole URL, password included.
			return dialect{}, "", errors.New("not a valid PostgreSQL URL")
		}
		return postgresDialect, rawURL, nil
	case strings.HasPrefix(rawURL, "sqlite://"):
		return sqliteTarget(strings.TrimPrefix(rawURL, "sqlite://"))
	case strings.HasPrefix(rawURL, "sqlite:"):
		return sqliteTarget(strings.TrimPrefix(rawURL, "sqlite:"))
	case strings.HasPrefix(rawURL, "file:"):
		return sqliteTarget(rawURL)
	case strings.HasSuffix(strings.SplitN(rawURL, "?", 2)[0], ".db"):
		return sqliteTarget(rawURL)
	}
	return dialect{}, "", errors.New("unsupported database URL: want postgres://, postgresql://, sqlite:PATH, file:PATH or a path ending in .db")
}

// sqliteTarget builds the SQLite DSN for path (which may carry its own
// query parameters).
func sqliteTarget(path string) (dialect, string, error) {
	if name, _, _ := strings.Cut(path, "?"); name == "" || name == "file:" {
		return dialect{}, "", errors.New("SQLite URL names no file")
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return sqliteDialect, path + sep + sqlitePragmas, nil
}

// Dialect names the connected database: "postgres" or "sqlite".
func (s *SQL) Dialect() string { return s.d.name }

// Ping checks that the database answers.
func (s *SQL) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return dbError("ping "+s.url, err)
	}
	return nil
}

// Close releases the connection pool.
func (s *SQL) Close() error {
	if stmt := s.resolve.Load(); stmt != nil {
		_ = stmt.Close()
	}
	if err := s.db.Close(); err != nil {
		return dbError("close "+s.url, err)
	}
	return nil
}
