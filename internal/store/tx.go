package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/agentauthz/agentauthz/internal/model"
)

// inTx runs fn in a transaction, committing if it returns nil and rolling
// back otherwise. fn must use tx only: on SQLite the pool holds one
// connection, which the transaction owns.
func (s *SQL) inTx(ctx context.Context, op string, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return dbError(op+": begin", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return dbError(op+": commit", err)
	}
	return nil
}

// expectOneRow turns "no row affected" into ErrNotFound.
func expectOneRow(op string, res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return dbError(op, err)
	}
	if n == 0 {
		return fmt.Errorf("store: %s: %w", op, model.ErrNotFound)
	}
	return nil
}
