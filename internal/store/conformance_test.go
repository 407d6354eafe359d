package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/store"
	"github.com/agentauthz/agentauthz/internal/store/pgtest"
	"github.com/agentauthz/agentauthz/internal/store/storetest"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, func() {
		if sqliteTemplate.dir != "" {
			_ = os.RemoveAll(sqliteTemplate.dir)
		}
	})
}

// TestConformance runs the one conformance suite against both databases.
func TestConformance(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		storetest.Run(t, func(t *testing.T) model.Store { return openSQLite(t) })
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		pgtest.URL(t) // skip (or fail under CI) once, not per rule
		storetest.Run(t, func(t *testing.T) model.Store { return openPostgres(t) })
	})
}

// ownerRemoving adds storetest.OwnerRemover to a store under test.
type ownerRemoving struct {
	*store.SQL
	remove func(ctx context.Context, userID int64) error
}

// RemoveOwnerRow deletes the user row, leaving its agents behind.
func (o ownerRemoving) RemoveOwnerRow(ctx context.Context, userID int64) error {
	return o.remove(ctx, userID)
}

// openSQLite returns a fresh migrated SQLite store in t's temp dir: a copy
// of one file migrated once for the whole run (the migrations themselves
// are tested on their own, in migrate_test.go).
func openSQLite(t *testing.T) model.Store {
	path := filepath.Join(t.TempDir(), "agentauthz.db")
	sqliteTemplate.once.Do(func() {
		sqliteTemplate.err = errors.New("migrating the template did not finish")
		dir, err := os.MkdirTemp("", "agentauthz-conformance-")
		if err != nil {
			sqliteTemplate.err = err
			return
		}
		sqliteTemplate.dir = dir
		sqliteTemplate.file = filepath.Join(dir, "migrated.db")
		sqliteTemplate.err = migrateAndClose("sqlite:" + sqliteTemplate.file)
	})
	if sqliteTemplate.err != nil {
		t.Fatalf("SQLite template: %v", sqliteTemplate.err)
	}
	b, err := os.ReadFile(sqliteTemplate.file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, "sqlite:"+path)
	return ownerRemoving{SQL: s, remove: func(ctx context.Context, userID int64) error {
		// A side connection without foreign_keys: the delete does not
		// cascade, so the agents outlive their owner.
		return rawExec(ctx, "sqlite", path+"?_pragma=busy_timeout(5000)",
			"DELETE FROM users WHERE id = ?", userID)
	}}
}

// sqliteTemplate is the SQLite file migrated once; TestMain removes it.
var sqliteTemplate struct {
	once      sync.Once
	dir, file string
	err       error
}

// migrateAndClose migrates the database of url and closes it: a template
// must have no session open (PostgreSQL) and nothing left in its WAL
// (SQLite).
func migrateAndClose(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, url)
	if err != nil {
		return err
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return err
	}
	return s.Close()
}

// openPostgres returns a fresh migrated store in its own PostgreSQL
// database, a copy of one database migrated once for the whole run.
func openPostgres(t *testing.T) model.Store {
	tpl := pgtest.Template(t, "migrated", migrateAndClose)
	url := pgtest.NewDatabaseFrom(t, tpl)
	s := openStore(t, url)
	return ownerRemoving{SQL: s, remove: func(ctx context.Context, userID int64) error {
		if err := rawExec(ctx, "postgres", url, "ALTER TABLE agents DROP CONSTRAINT agents_owner_fkey"); err != nil {
			return err
		}
		return rawExec(ctx, "postgres", url, "DELETE FROM users WHERE id = $1", userID)
	}}
}

// openStore opens url (already migrated) and closes it when t ends.
func openStore(t *testing.T, url string) *store.SQL {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// openMigrated opens url, migrates it and closes it when t ends.
func openMigrated(t *testing.T, url string) *store.SQL {
	t.Helper()
	s := openStore(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// rawExec runs one statement on its own connection, behind the store's back.
func rawExec(ctx context.Context, driver, dsn, query string, args ...any) error {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, query, args...)
	return err
}
