package store

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"time"

	"github.com/lib/pq"
)

// ChangeChannel is the PostgreSQL notification channel on which the
// triggers of migrations/postgres/00003_notify.sql announce committed
// changes, with payloads such as {"t":"token","id":12} (t is token, agent
// or user; a grant change names its agent). internal/changes listens.
const ChangeChannel = "agentauthz_changes"

// ListenerApplicationName is the application_name of a listener's
// session, so that operators (and tests) can find it in pg_stat_activity.
const ListenerApplicationName = "agentauthz-change-listener"

// NewListener returns a lib/pq Listener on the PostgreSQL database at
// rawURL that dials as the pool does (keepalive, TCP_USER_TIMEOUT, the
// default connect timeout): a dead server is noticed, the connection
// replaced, and a nil notification sent on reconnection. It listens on
// nothing yet. Errors never quote the password.
func NewListener(rawURL string, minReconnect, maxReconnect time.Duration, cb pq.EventCallbackType) (*pq.Listener, error) {
	d, dsn, err := parseDatabaseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if d.name != postgresDialect.name {
		return nil, errors.New("store: listening needs PostgreSQL")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, errors.New("not a valid PostgreSQL URL")
	}
	q := u.Query()
	if !q.Has("connect_timeout") {
		q.Set("connect_timeout", strconv.Itoa(int(defaultConnectTimeout/time.Second)))
	}
	// Names the session in pg_stat_activity.
	q.Set("application_name", ListenerApplicationName)
	u.RawQuery = q.Encode()
	return pq.NewDialListener(newPGDialer(), u.String(), minReconnect, maxReconnect, cb), nil
}

// DataVersion returns SQLite's PRAGMA data_version on this store's
// connection: a value that changes when another connection (another
// process, such as the CLI) commits to the file, and not for this
// connection's own commits. data_version is per connection; the pool holds
// exactly one SQLite connection (sqliteDialect.maxOpenConns, as many idle),
// so every call asks the connection this process also writes through, and
// this process's own writes (last_used_at flushes included) do not show.
// Residual: should database/sql ever replace that connection (only after
// the driver reports it broken; no lifetime is set), the new connection's
// counter starts afresh and a commit between the two could go unseen. On
// PostgreSQL it is an error.
func (s *SQL) DataVersion(ctx context.Context) (int64, error) {
	if s.d.name != sqliteDialect.name {
		return 0, errors.New("store: data_version is SQLite's")
	}
	var v int64
	if err := s.db.GetContext(ctx, &v, "PRAGMA data_version"); err != nil {
		return 0, dbError("data_version "+s.url, err)
	}
	return v, nil
}
