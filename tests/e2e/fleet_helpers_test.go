package e2e

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/agentauthz/agentauthz/internal/store"
	"github.com/agentauthz/agentauthz/internal/store/pgtest"
)

// fleet is three `serve` replicas on one fresh PostgreSQL database, each
// caching tokens for an hour, so that only propagation through the store
// can explain a refusal on a replica other than the writer's. Every
// replica believes proxy headers from 127.0.0.1 (management calls use
// asUser). last_used_at is not flushed during a test (--touch-interval=1h):
// while new sessions are refused, a flush would need a second pool
// connection beside the request's.
type fleet struct {
	db       string
	a, b, c  *server
	replicas []*server
}

// startFleet seeds the world into a fresh database and starts the three
// replicas (under CI=true a missing PostgreSQL fails the test).
func startFleet(t *testing.T) *fleet {
	t.Helper()
	db := pgtest.NewDatabase(t)
	seedWorld(t, db)
	f := &fleet{db: db}
	for range 3 {
		f.replicas = append(f.replicas, startServer(t, db, "--cache-ttl=1h", "--trusted-proxies=127.0.0.1/32", "--touch-interval=1h"))
	}
	f.a, f.b, f.c = f.replicas[0], f.replicas[1], f.replicas[2]
	return f
}

// warm puts tok into every replica's token cache (and checks that each
// answers it from the cache), so a replica that missed a change would
// keep accepting it for an hour.
func (f *fleet) warm(t *testing.T, tok string) {
	t.Helper()
	for _, s := range f.replicas {
		s.cacheFollowing(t, tok)
	}
}

// flipsWithin polls every replica in others with check until each has
// answered true, failing after propagationBound; it logs how long each
// took after since (the moment the writer was asked).
func flipsWithin(t *testing.T, what string, since time.Time, others []*server, check func(*server) bool) {
	t.Helper()
	took := make([]time.Duration, len(others))
	left := len(others)
	for left > 0 {
		for i, s := range others {
			if took[i] == 0 && check(s) {
				took[i] = max(time.Since(since), time.Nanosecond)
				left--
			}
		}
		if left > 0 && time.Since(since) > propagationBound {
			t.Fatalf("%s: not seen by every other replica within %v (--cache-ttl=1h); seen after %v (0: not seen)", what, propagationBound, took)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("%s: the other replicas saw it after %v", what, took)
}

// refused is a check for flipsWithin: tok is answered 401 naming reason
// (200 until then).
func refused(t *testing.T, tok, reason string) func(*server) bool {
	return func(s *server) bool {
		r := s.do(t, "GET", "/v1/whoami", nil, bearer(tok))
		if r.status == http.StatusOK {
			return false
		}
		wantInvalidToken(t, r, reason)
		return true
	}
}

// readyz is the /readyz answer.
type readyz struct {
	status int
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func (s *server) readyz(t *testing.T) readyz {
	t.Helper()
	r := s.do(t, "GET", "/readyz", nil)
	out := readyz{status: r.status}
	r.decode(t, &out)
	return out
}

// counter is a /metrics series as a number (0 when absent).
func (s *server) counter(t *testing.T, series string) float64 {
	t.Helper()
	v := s.metric(t, series)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil {
		t.Fatalf("%s = %q: %v", series, v, err)
	}
	return n
}

// pollUntil polls cond until it holds, failing after within.
func pollUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pgAdmin is a session on the server's maintenance database, for what a
// session cannot do to its own database.
type pgAdmin struct {
	db   *sql.DB
	name string // the fleet's database
}

func newPGAdmin(t *testing.T, dbURL string) *pgAdmin {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("postgres", pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return &pgAdmin{db: db, name: strings.TrimPrefix(u.Path, "/")}
}

func (p *pgAdmin) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.db.ExecContext(ctx, query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// allowConnections sets whether new sessions may connect to the fleet's
// database (the open ones keep working).
func (p *pgAdmin) allowConnections(t *testing.T, allow bool) {
	t.Helper()
	p.exec(t, "ALTER DATABASE "+pq.QuoteIdentifier(p.name)+" ALLOW_CONNECTIONS "+strconv.FormatBool(allow))
}

// killListeners terminates the backends of the replicas' change listeners
// (found by their application_name) and returns how many it ended.
func (p *pgAdmin) killListeners(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	err := p.db.QueryRowContext(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND datname = $2",
		store.ListenerApplicationName, p.name).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
