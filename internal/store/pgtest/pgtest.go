// Package pgtest provides PostgreSQL to tests: the server named by
// DATABASE_URL, else the conventional local server, else a throwaway
// cluster it starts from the installed PostgreSQL binaries. Each test gets
// its own database. Without any server, tests skip, or fail when CI=true.
//
// pgtest is test support: it reads the environment and starts processes,
// which production code under internal/ must never do.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/agentauthz/agentauthz/internal/store"
)

// DefaultURL is the server tried when DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	findOnce  sync.Once
	serverURL string
	findErr   error

	clusterMu sync.Mutex
	running   *cluster
)

// URL returns the URL of a PostgreSQL server's maintenance database, found
// once per test binary. Without a server it skips t, or fails it when the
// environment has CI=true.
func URL(t testing.TB) string {
	t.Helper()
	findOnce.Do(func() { serverURL, findErr = find(context.Background(), os.Getenv) })
	if findErr != nil {
		fatal, msg := unavailableMessage(os.Getenv("CI") == "true", findErr)
		if fatal {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return serverURL
}

// NewDatabase creates a fresh database agentauthz_t_<random> on the server
// from URL, drops it when t ends, and returns its URL.
func NewDatabase(t testing.TB) string { return NewDatabaseFrom(t, "") }

// NewDatabaseFrom is NewDatabase with the new database a copy of template
// (a name from Template; "" is PostgreSQL's default, template1).
func NewDatabaseFrom(t testing.TB, template string) string {
	t.Helper()
	admin := URL(t)
	name := testDatabasePrefix + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := createDatabase(ctx, admin, name, template); err != nil {
		t.Fatalf("pgtest: create database %s on %s: %v", name, store.RedactURL(admin), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dropDatabase(ctx, admin, name); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return withPath(t, admin, name)
}

// Refill replaces the database of dbURL (made by NewDatabase or
// NewDatabaseFrom, and used by no session) with a copy of template, under
// the same name, so the cleanup NewDatabase registered still drops it.
func Refill(t testing.TB, dbURL, template string) {
	t.Helper()
	admin := URL(t)
	name, ok := DatabaseName(dbURL)
	if !ok {
		t.Fatalf("pgtest: Refill only replaces a database NewDatabase made, not %s", store.RedactURL(dbURL))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := AdminExec(ctx, admin, "DROP DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		t.Fatalf("pgtest: drop database %s to refill it: %v", name, err)
	}
	if err := createDatabase(ctx, admin, name, template); err != nil {
		t.Fatalf("pgtest: refill database %s from %s: %v", name, template, err)
	}
}

// DatabaseName is the name of the database of dbURL, and whether
// NewDatabase or NewDatabaseFrom made it (only those are Refill's to drop).
func DatabaseName(dbURL string) (string, bool) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", false
	}
	name := strings.TrimPrefix(u.Path, "/")
	return name, strings.HasPrefix(name, testDatabasePrefix)
}

// testDatabasePrefix starts the name of every database NewDatabase makes.
const testDatabasePrefix = "agentauthz_t_"

// template is one database Template made for the whole test binary.
type template struct {
	once sync.Once
	name string
	err  error
}

var (
	templatesMu sync.Mutex
	templates   = map[string]*template{}
)

// Template returns the name of a database made once per test binary under
// key and filled by fill (given its URL): a copy source for NewDatabaseFrom
// and Refill, far cheaper than repeating fill. Stop (and so Main) drops it.
// fill must close every connection it opened: PostgreSQL refuses to copy
// a database another session is connected to (copies may run at once).
func Template(t testing.TB, key string, fill func(dbURL string) error) string {
	t.Helper()
	admin := URL(t)
	templatesMu.Lock()
	tp := templates[key]
	if tp == nil {
		tp = &template{}
		templates[key] = tp
	}
	templatesMu.Unlock()
	tp.once.Do(func() {
		tp.err = fmt.Errorf("filling template %q did not finish", key) // until fill returns
		name := "agentauthz_tpl_" + randomHex(8)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := createDatabase(ctx, admin, name, ""); err != nil {
			tp.err = err
			return
		}
		tp.name = name
		tp.err = fill(withPath(t, admin, name))
	})
	if tp.err != nil {
		t.Fatalf("pgtest: template %q: %v", key, tp.err)
	}
	return tp.name
}

func createDatabase(ctx context.Context, admin, name, template string) error {
	stmt := "CREATE DATABASE " + pq.QuoteIdentifier(name)
	if template != "" {
		stmt += " TEMPLATE " + pq.QuoteIdentifier(template)
	}
	return AdminExec(ctx, admin, stmt)
}

// dropDatabase ends connections a test left open (FORCE, PostgreSQL 13+).
func dropDatabase(ctx context.Context, admin, name string) error {
	return AdminExec(ctx, admin, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)")
}

func withPath(t testing.TB, admin, name string) string {
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("pgtest: server URL %s: %v", store.RedactURL(admin), err)
	}
	u.Path = "/" + name
	return u.String()
}

// Main runs the tests of m, then the package's own cleanups, then Stop;
// call it from TestMain.
func Main(m *testing.M, cleanups ...func()) {
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	if err := Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// Stop drops the templates and stops and removes the throwaway cluster, if
// pgtest started one.
func Stop() error {
	var errs []error
	templatesMu.Lock()
	for key, tp := range templates {
		if tp.name != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := dropDatabase(ctx, serverURL, tp.name); err != nil {
				errs = append(errs, fmt.Errorf("pgtest: drop template %q (%s): %w", key, tp.name, err))
			}
			cancel()
		}
		delete(templates, key)
	}
	templatesMu.Unlock()
	clusterMu.Lock()
	defer clusterMu.Unlock()
	if running != nil {
		errs = append(errs, running.stop())
		running = nil
	}
	return errors.Join(errs...)
}

// find locates a server: DATABASE_URL if set (and nothing else, so a wrong
// setting is reported rather than papered over), else DefaultURL, else a
// throwaway cluster.
func find(ctx context.Context, getenv func(string) string) (string, error) {
	if u := getenv("DATABASE_URL"); u != "" {
		if err := ping(ctx, u); err != nil {
			return "", fmt.Errorf("DATABASE_URL=%s does not answer: %w", store.RedactURL(u), err)
		}
		return u, nil
	}
	defaultErr := ping(ctx, DefaultURL)
	if defaultErr == nil {
		return DefaultURL, nil
	}
	c, err := startCluster(ctx)
	if err != nil {
		return "", fmt.Errorf("%s does not answer (%v) and no throwaway cluster could be started: %w", DefaultURL, defaultErr, err)
	}
	clusterMu.Lock()
	running = c
	clusterMu.Unlock()
	return c.url, nil
}

// unavailableMessage says why PostgreSQL tests cannot run and whether that
// is fatal (under CI) or a skip.
func unavailableMessage(ci bool, err error) (fatal bool, msg string) {
	const how = "set DATABASE_URL, run a server at " + DefaultURL + ", or install the PostgreSQL server binaries (initdb, pg_ctl)"
	if ci {
		return true, "PostgreSQL is required under CI=true: " + how + ": " + err.Error()
	}
	return false, "PostgreSQL not available, skipping (" + how + "): " + err.Error()
}

// ping opens rawURL and checks that it answers within a few seconds.
func ping(ctx context.Context, rawURL string) error {
	db, err := sql.Open("postgres", rawURL)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// AdminExec runs one statement (CREATE DATABASE ..., DROP DATABASE ...) on
// the server's maintenance database, rawURL (URL's answer).
func AdminExec(ctx context.Context, rawURL, statement string) error {
	db, err := sql.Open("postgres", rawURL)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, statement)
	return err
}

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
