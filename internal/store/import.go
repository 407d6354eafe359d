package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/agentauthz/agentauthz/internal/model"
)

// importBatch is how many rows one INSERT of an import carries: eight
// parameters a row keeps it well under both databases' parameter limits.
const importBatch = 500

// ImportAgents inserts agents in multi-row batches inside one transaction
// and returns them as stored, in the order given (ids assigned; defaults as
// in CreateAgent). It is the bulk-load path (seeding a fleet, a migration
// from another system): it asks no policy, so only trusted code calls it.
// A missing owner is ErrNotFound, a taken slug ErrConflict; either rolls
// back the whole import.
func (s *SQL) ImportAgents(ctx context.Context, agents []model.Agent) ([]model.Agent, error) {
	op := fmt.Sprintf("import %d agents", len(agents))
	out := make([]model.Agent, 0, len(agents))
	err := s.inTx(ctx, op, func(tx *sqlx.Tx) error {
		for start := 0; start < len(agents); start += importBatch {
			batch := agents[start:min(start+importBatch, len(agents))]
			rows, args := make([]string, len(batch)), make([]any, 0, 7*len(batch))
			for i, a := range batch {
				row, err := s.agentInsertArgs(a)
				if err != nil {
					return fmt.Errorf("store: %s: %w", op, err)
				}
				rows[i], args = "(?, ?, ?, ?, ?, ?, ?)", append(args, row...)
			}
			var stored []agentRow
			err := tx.SelectContext(ctx, &stored, tx.Rebind(
				`INSERT INTO agents (slug, name, owner_id, status, tool_policy, created_at, updated_at) VALUES `+
					strings.Join(rows, ", ")+` RETURNING `+agentColumns), args...)
			if isForeignKeyViolation(err) {
				return fmt.Errorf("store: %s: an owner: %w", op, model.ErrNotFound)
			}
			if err != nil {
				return dbError(op, err)
			}
			// RETURNING promises no order: match the rows by slug.
			bySlug := make(map[string]agentRow, len(stored))
			for _, r := range stored {
				bySlug[r.Slug] = r
			}
			for _, a := range batch {
				got, err := bySlug[a.Slug].agent()
				if err != nil {
					return err
				}
				out = append(out, got)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ImportGrants inserts grants in multi-row batches inside one transaction
// (a zero GrantedAt is now). Like ImportAgents it is the bulk-load path and
// asks no policy. A missing agent is ErrNotFound and a grant that already
// exists ErrConflict; either rolls back the whole import.
func (s *SQL) ImportGrants(ctx context.Context, grants []model.Grant) error {
	op := fmt.Sprintf("import %d grants", len(grants))
	return s.inTx(ctx, op, func(tx *sqlx.Tx) error {
		for start := 0; start < len(grants); start += importBatch {
			batch := grants[start:min(start+importBatch, len(grants))]
			rows, args := make([]string, len(batch)), make([]any, 0, 4*len(batch))
			for i, g := range batch {
				rows[i] = "(?, ?, ?, ?)"
				args = append(args, g.AgentID, g.Principal, g.Role, s.timeArg(orNow(g.GrantedAt, s.now)))
			}
			_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO agent_grants (`+grantColumns+`) VALUES `+strings.Join(rows, ", ")), args...)
			if isForeignKeyViolation(err) {
				return fmt.Errorf("store: %s: an agent: %w", op, model.ErrNotFound)
			}
			if err != nil {
				return dbError(op, err)
			}
		}
		return nil
	})
}
