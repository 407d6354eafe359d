package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/store"
	"github.com/agentauthz/agentauthz/internal/store/pgtest"
)

func TestOpenAcceptsSQLiteURLForms(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ name, url, file string }{
		{"sqlite: prefix", "sqlite:" + filepath.Join(dir, "a.db"), "a.db"},
		{"sqlite:// prefix", "sqlite://" + filepath.Join(dir, "b.db"), "b.db"},
		{"file: URI", "file:" + filepath.Join(dir, "c.db"), "c.db"},
		{"bare path ending in .db", filepath.Join(dir, "d.db"), "d.db"},
		{"sqlite: prefix with its own parameters", "sqlite:" + filepath.Join(dir, "e.sqlite") + "?_pragma=synchronous(NORMAL)", "e.sqlite"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openMigrated(t, c.url)
			if got := s.Dialect(); got != "sqlite" {
				t.Errorf("Dialect() = %q, want sqlite", got)
			}
			if _, err := os.Stat(filepath.Join(dir, c.file)); err != nil {
				t.Errorf("database file not created: %v", err)
			}
		})
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	cases := []struct {
		name   string
		url    string
		target error // nil: any error
	}{
		{"unknown scheme", "mysql://app:s3cret@db/agentauthz", nil},
		{"sqlite URL without a file", "sqlite:", nil},
		{"postgres URL that does not parse", "postgres://app:s3cret@db:bad port/x", nil},
		{"unreachable postgres", "postgres://app:s3cret@127.0.0.1:1/agentauthz?sslmode=disable&connect_timeout=2", model.ErrUnavailable},
		{"sqlite file in a missing directory", "sqlite:" + filepath.Join(t.TempDir(), "missing", "x.db"), model.ErrUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := store.Open(ctx, c.url)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded, want an error", store.RedactURL(c.url))
			}
			if c.target != nil && !errors.Is(err, c.target) {
				t.Errorf("Open error %v, want %v", err, c.target)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("Open error leaks the password: %v", err)
			}
			if !strings.Contains(err.Error(), store.RedactURL(c.url)) {
				t.Errorf("Open error %q does not name the redacted URL %q", err, store.RedactURL(c.url))
			}
		})
	}
}

// migrationRuns checks Migrate twice and MigrationStatus on a fresh database.
func migrationRuns(t *testing.T, url string) {
	s := openMigrated(t, url)
	ctx := t.Context()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	status, err := s.MigrationStatus(ctx)
	if err != nil {
		t.Fatalf("MigrationStatus: %v", err)
	}
	if len(status) == 0 {
		t.Fatal("MigrationStatus lists no migrations")
	}
	for _, m := range status {
		if !m.Applied || m.AppliedAt.IsZero() {
			t.Errorf("migration %d (%s) not applied: %+v", m.Version, m.Name, m)
		}
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { migrationRuns(t, "sqlite:"+filepath.Join(t.TempDir(), "m.db")) })
	t.Run("postgres", func(t *testing.T) { migrationRuns(t, pgtest.NewDatabase(t)) })
}

func TestConcurrentMigrationsOnPostgresAgree(t *testing.T) {
	url := pgtest.NewDatabase(t)
	const replicas = 4
	stores := make([]*store.SQL, replicas)
	for i := range stores {
		s, err := store.Open(t.Context(), url)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d Migrate: %v", i, err)
		}
	}
	if _, err := stores[0].CreateUser(t.Context(), model.User{Login: "ada"}); err != nil {
		t.Errorf("CreateUser after concurrent migrations: %v", err)
	}
}
