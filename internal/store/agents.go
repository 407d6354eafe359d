package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/agentauthz/agentauthz/internal/model"
)

const agentColumns = "id, slug, name, owner_id, status, tool_policy, created_at, updated_at"

// agentRow is an agents row as stored.
type agentRow struct {
	ID         int64   `db:"id"`
	Slug       string  `db:"slug"`
	Name       string  `db:"name"`
	OwnerID    int64   `db:"owner_id"`
	Status     string  `db:"status"`
	ToolPolicy *string `db:"tool_policy"`
	CreatedAt  dbTime  `db:"created_at"`
	UpdatedAt  dbTime  `db:"updated_at"`
}

func (r agentRow) agent() (model.Agent, error) {
	tp, err := unmarshalToolPolicy(r.ToolPolicy)
	if err != nil {
		return model.Agent{}, corruptRow(fmt.Sprintf("agent %d tool_policy", r.ID), err)
	}
	return model.Agent{
		ID: r.ID, Slug: r.Slug, Name: r.Name, OwnerID: r.OwnerID, Status: intern(r.Status),
		ToolPolicy: tp, CreatedAt: r.CreatedAt.T, UpdatedAt: r.UpdatedAt.T,
	}, nil
}

func agentsFromRows(rows []agentRow) ([]model.Agent, error) {
	out := make([]model.Agent, 0, len(rows))
	for _, r := range rows {
		a, err := r.agent()
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// CreateAgent inserts a and returns it as stored. The id is assigned; an
// empty Status is active, a zero CreatedAt is now and a zero UpdatedAt is
// CreatedAt. A missing owner is ErrNotFound, a taken slug ErrConflict.
func (s *SQL) CreateAgent(ctx context.Context, a model.Agent) (model.Agent, error) {
	op := fmt.Sprintf("create agent %q", a.Slug)
	args, err := s.agentInsertArgs(a)
	if err != nil {
		return model.Agent{}, fmt.Errorf("store: %s: %w", op, err)
	}
	var r agentRow
	err = s.db.GetContext(ctx, &r, s.db.Rebind(
		`INSERT INTO agents (slug, name, owner_id, status, tool_policy, created_at, updated_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING `+agentColumns), args...)
	if isForeignKeyViolation(err) {
		return model.Agent{}, fmt.Errorf("store: %s: owner %d: %w", op, a.OwnerID, model.ErrNotFound)
	}
	if err != nil {
		return model.Agent{}, dbError(op, err)
	}
	return r.agent()
}

// agentInsertArgs are the seven values of an agents row for a, with the
// defaults CreateAgent documents.
func (s *SQL) agentInsertArgs(a model.Agent) ([]any, error) {
	tp, err := marshalToolPolicy(a.ToolPolicy)
	if err != nil {
		return nil, fmt.Errorf("agent %q tool policy: %w", a.Slug, err)
	}
	if a.Status == "" {
		a.Status = model.StatusActive
	}
	created := orNow(a.CreatedAt, s.now)
	updated := created
	if !a.UpdatedAt.IsZero() {
		updated = normalTime(a.UpdatedAt)
	}
	return []any{a.Slug, a.Name, a.OwnerID, a.Status, tp, s.timeArg(created), s.timeArg(updated)}, nil
}

// GetAgent returns the agent with id.
func (s *SQL) GetAgent(ctx context.Context, id int64) (model.Agent, error) {
	return s.getAgent(ctx, fmt.Sprintf("get agent %d", id), `SELECT `+agentColumns+` FROM agents WHERE id = ?`, id)
}

// GetAgentBySlug returns the agent with slug.
func (s *SQL) GetAgentBySlug(ctx context.Context, slug string) (model.Agent, error) {
	return s.getAgent(ctx, fmt.Sprintf("get agent %q", slug), `SELECT `+agentColumns+` FROM agents WHERE slug = ?`, slug)
}

func (s *SQL) getAgent(ctx context.Context, op, query string, arg any) (model.Agent, error) {
	var r agentRow
	if err := s.db.GetContext(ctx, &r, s.db.Rebind(query), arg); err != nil {
		return model.Agent{}, dbError(op, err)
	}
	return r.agent()
}

// ListAgents returns the agents q selects, ordered by id. Without All, each
// way to be selected (ownership, a grant to a principal, a matching grant)
// is a branch of a UNION that its own index answers, so a page costs the
// rows that qualify rather than a scan of the fleet in id order checking
// each agent.
func (s *SQL) ListAgents(ctx context.Context, q model.AgentQuery) ([]model.Agent, error) {
	var where []string
	var args []any
	if q.AfterID > 0 {
		where, args = append(where, "id > ?"), append(args, q.AfterID)
	}
	if !q.All {
		branches, bargs := agentBranches(q)
		if len(branches) == 0 {
			return []model.Agent{}, nil // no filter and not All: fail closed
		}
		where, args = append(where, "id IN ("+strings.Join(branches, " UNION ")+")"), append(args, bargs...)
	}
	query := `SELECT ` + agentColumns + ` FROM agents`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id`
	if q.Limit > 0 {
		query, args = query+` LIMIT ?`, append(args, q.Limit)
	}
	query, args, err := sqlx.In(query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list agents: %w", err)
	}
	var rows []agentRow
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(query), args...); err != nil {
		return nil, dbError("list agents", err)
	}
	return agentsFromRows(rows)
}

// agentBranches are the id subqueries of a filtered ListAgents, each
// bounded below by q.AfterID; none when q selects nothing.
func agentBranches(q model.AgentQuery) ([]string, []any) {
	var branches []string
	var args []any
	if q.OwnerID != 0 {
		branches, args = append(branches, "SELECT id FROM agents WHERE owner_id = ? AND id > ?"), append(args, q.OwnerID, q.AfterID)
	}
	if len(q.OrPrincipals) > 0 {
		branches = append(branches, "SELECT agent_id FROM agent_grants WHERE principal IN (?) AND agent_id > ?")
		args = append(args, q.OrPrincipals, q.AfterID)
	}
	for _, m := range q.OrGrants {
		if len(m.Roles) == 0 {
			continue // matches no grant
		}
		branches = append(branches, "SELECT agent_id FROM agent_grants WHERE principal = ? AND role IN (?) AND agent_id > ?")
		args = append(args, m.Principal, m.Roles, q.AfterID)
	}
	return branches, args
}

// UpdateAgent applies p to the agent with id, sets updated_at to now and
// returns the result.
func (s *SQL) UpdateAgent(ctx context.Context, id int64, p model.AgentPatch) (model.Agent, error) {
	op := fmt.Sprintf("update agent %d", id)
	sets := []string{"updated_at = ?"}
	args := []any{s.timeArg(s.now())}
	if p.Name != nil {
		sets, args = append(sets, "name = ?"), append(args, *p.Name)
	}
	if p.Status != nil {
		sets, args = append(sets, "status = ?"), append(args, *p.Status)
	}
	switch {
	case p.ClearToolPolicy:
		sets, args = append(sets, "tool_policy = ?"), append(args, nil)
	case p.ToolPolicy != nil:
		tp, err := marshalToolPolicy(p.ToolPolicy)
		if err != nil {
			return model.Agent{}, fmt.Errorf("store: %s: tool policy: %w", op, err)
		}
		sets, args = append(sets, "tool_policy = ?"), append(args, tp)
	}
	var r agentRow
	query := `UPDATE agents SET ` + strings.Join(sets, ", ") + ` WHERE id = ? RETURNING ` + agentColumns
	if err := s.db.GetContext(ctx, &r, s.db.Rebind(query), append(args, id)...); err != nil {
		return model.Agent{}, dbError(op, err)
	}
	return r.agent()
}

// DeleteAgent removes the agent, its grants and its tokens in one
// transaction, and revokes the tokens minted from those tokens on other
// agents (deleting a token ends it like a revocation; a descendant whose
// ancestor is gone never resolves). The foreign keys cascade too; deleting
// explicitly keeps the rule visible and independent of the schema. It
// returns the ids of the descendants it revoked.
func (s *SQL) DeleteAgent(ctx context.Context, id int64) ([]int64, error) {
	op := fmt.Sprintf("delete agent %d", id)
	var own, revoked []int64
	now := s.now()
	err := s.inTx(ctx, op, func(tx *sqlx.Tx) error {
		if err := tx.SelectContext(ctx, &own, tx.Rebind(`SELECT id FROM agent_tokens WHERE agent_id = ?`), id); err != nil {
			return dbError(op+": tokens", err)
		}
		var err error
		if revoked, err = s.revokeBelow(ctx, tx, op, own, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM agent_grants WHERE agent_id = ?`), id); err != nil {
			return dbError(op+": grants", err)
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM agent_tokens WHERE agent_id = ?`), id); err != nil {
			return dbError(op+": tokens", err)
		}
		res, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM agents WHERE id = ?`), id)
		if err != nil {
			return dbError(op, err)
		}
		return expectOneRow(op, res)
	})
	if err != nil {
		return nil, err
	}
	// Once more after the commit, for a child a racing mint committed
	// meanwhile; best effort, as in RevokeToken (such a child is refused at
	// resolution anyway: its ancestor is gone).
	late, _ := s.revokeBelow(ctx, s.db, op, own, now)
	return sortedUnion(revoked, late), nil
}
