package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/store"
	"github.com/agentauthz/agentauthz/internal/store/pgtest"
	"github.com/agentauthz/agentauthz/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

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

// openSQLite returns a fresh migrated SQLite store in t's temp dir.
func openSQLite(t *testing.T) model.Store {
	path := filepath.Join(t.TempDir(), "agentauthz.db")
	s := openMigrated(t, "sqlite:"+path)
	return ownerRemoving{SQL: s, remove: func(ctx context.Context, userID int64) error {
		// A side connection without foreign_keys: the delete does not
		// cascade, so the agents outlive their owner.
		return rawExec(ctx, "sqlite", path+"?_pragma=busy_timeout(5000)",
			"DELETE FROM users WHERE id = ?", userID)
	}}
}

// openPostgres returns a fresh migrated store in its own PostgreSQL database.
func openPostgres(t *testing.T) model.Store {
	url := pgtest.NewDatabase(t)
	s := openMigrated(t, url)
	return ownerRemoving{SQL: s, remove: func(ctx context.Context, userID int64) error {
		if err := rawExec(ctx, "postgres", url, "ALTER TABLE agents DROP CONSTRAINT agents_owner_fkey"); err != nil {
			return err
		}
		return rawExec(ctx, "postgres", url, "DELETE FROM users WHERE id = $1", userID)
	}}
}

// openMigrated opens url, migrates it and closes it when t ends.
func openMigrated(t *testing.T, url string) *store.SQL {
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
