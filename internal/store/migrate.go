package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrationFiles holds one directory of goose SQL migrations per dialect;
// the two are kept structurally identical.
//
//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrationFiles embed.FS

// MigrationState is the state of one migration in the connected database.
type MigrationState struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time
}

// provider builds the goose provider for the connected dialect. On
// PostgreSQL an advisory session lock keeps replicas that start together
// from migrating at once.
func (s *SQL) provider() (*goose.Provider, error) {
	dir, err := fs.Sub(migrationFiles, "migrations/"+s.d.name)
	if err != nil {
		return nil, fmt.Errorf("store: migrations for %s: %w", s.d.name, err)
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if s.d.name == postgresDialect.name {
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, fmt.Errorf("store: migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(s.d.goose, s.db.DB, dir, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: migrations for %s: %w", s.d.name, err)
	}
	return p, nil
}

// Migrate applies every pending migration.
func (s *SQL) Migrate(ctx context.Context) error {
	p, err := s.provider()
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return dbError("migrate "+s.url, err)
	}
	return nil
}

// MigrationStatus lists every known migration and whether it is applied.
func (s *SQL) MigrationStatus(ctx context.Context) ([]MigrationState, error) {
	p, err := s.provider()
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, dbError("migration status "+s.url, err)
	}
	out := make([]MigrationState, 0, len(st))
	for _, m := range st {
		ms := MigrationState{Version: m.Source.Version, Applied: m.State == goose.StateApplied}
		ms.Name = m.Source.Path
		if ms.Applied {
			ms.AppliedAt = m.AppliedAt.UTC()
		}
		out = append(out, ms)
	}
	return out, nil
}
