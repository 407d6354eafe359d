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
	"fmt"
	"net/url"
	"os"
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
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := URL(t)
	name := "agentauthz_t_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := AdminExec(ctx, admin, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		t.Fatalf("pgtest: create database %s on %s: %v", name, store.RedactURL(admin), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends connections a test left open (PostgreSQL 13+).
		if err := AdminExec(ctx, admin, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("pgtest: server URL %s: %v", store.RedactURL(admin), err)
	}
	u.Path = "/" + name
	return u.String()
}

// Main runs the tests of m and then stops any cluster pgtest started; call
// it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if err := Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// Stop stops and removes the throwaway cluster, if pgtest started one.
func Stop() error {
	clusterMu.Lock()
	defer clusterMu.Unlock()
	if running == nil {
		return nil
	}
	err := running.stop()
	running = nil
	return err
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
