package e2e

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/store/pgtest"
)

// Seeding the cast takes 13 CLI runs; about fifty tests seed it, on both
// stores. The first world of each kind of store is seeded command by
// command through the CLI (seedSteps) into a template, and every later one
// is a copy of that template: a file copy for SQLite, CREATE DATABASE ...
// TEMPLATE for PostgreSQL (pgtest.Template and pgtest.Refill). The rows,
// ids and sequences are the ones the CLI wrote. A target that is not empty
// any more (a server already migrated it) is seeded through the CLI.

// worldTemplate is the seeded SQLite template (pgtest.Template keeps the
// PostgreSQL one).
type worldTemplate struct {
	once sync.Once
	loc  string
	err  error
}

var sqliteWorld worldTemplate

// cloneWorld copies the seeded template into dbURL and reports whether it
// did; false means "seed it through the CLI".
func cloneWorld(t *testing.T, dbURL string) bool {
	t.Helper()
	if path, ok := strings.CutPrefix(dbURL, "sqlite:"); ok && !strings.Contains(path, "?") {
		return cloneSQLite(t, path)
	}
	if strings.HasPrefix(dbURL, "postgres://") {
		return clonePostgres(t, dbURL)
	}
	return false
}

func cloneSQLite(t *testing.T, path string) bool {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return false // the test already made the file
	}
	sqliteWorld.once.Do(func() {
		sqliteWorld.err = errUnfinished // until seedSteps returns (a t.Fatal inside it ends the Do)
		sqliteWorld.loc = filepath.Join(filepath.Dir(binPath), "world-template.db")
		seedSteps(t, "sqlite:"+sqliteWorld.loc)
		sqliteWorld.err = nil
	})
	if sqliteWorld.err != nil {
		t.Fatalf("seeding the SQLite world template: %v", sqliteWorld.err)
	}
	// The last connection of the last CLI run checkpointed the WAL into
	// the file and removed it; a WAL left behind would hold rows the copy
	// lacks.
	if _, err := os.Stat(sqliteWorld.loc + "-wal"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the SQLite world template has a WAL beside it (%v): a copy of the file alone would miss rows", err)
	}
	b, err := os.ReadFile(sqliteWorld.loc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return true
}

func clonePostgres(t *testing.T, dbURL string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, ours := pgtest.DatabaseName(dbURL); !ours {
		return false // not pgtest's to replace
	}
	if empty, err := postgresEmpty(ctx, dbURL); err != nil || !empty {
		return false
	}
	tpl := pgtest.Template(t, "e2e world", func(url string) error {
		seedSteps(t, url) // a failing step ends the test, and Template reports the fill unfinished
		return nil
	})
	// The database pgtest made is empty and unused: refill it with a copy.
	pgtest.Refill(t, dbURL, tpl)
	return true
}

// errUnfinished stands for a template whose seeding never returned.
var errUnfinished = errors.New("the template's seeding did not finish")

// postgresEmpty reports whether nothing has migrated the database yet.
func postgresEmpty(ctx context.Context, dbURL string) (bool, error) {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return false, err
	}
	defer db.Close()
	var tables int
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables)
	return tables == 0, err
}

// seedSteps runs the cast's CLI commands against dbURL.
func seedSteps(t *testing.T, dbURL string) {
	t.Helper()
	for _, step := range worldSteps {
		cliJSON(t, dbURL, nil, step...)
	}
}
