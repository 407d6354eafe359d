package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"

	"github.com/agentauthz/agentauthz/internal/model"
)

const grantColumns = "agent_id, principal, role, granted_at"

// inListBatch bounds the ids bound in one IN (...) query (GrantsFor, GetUsers), well
// under the parameter limits of both databases.
const inListBatch = 500

// grantRow is an agent_grants row as stored.
type grantRow struct {
	AgentID   int64  `db:"agent_id"`
	Principal string `db:"principal"`
	Role      string `db:"role"`
	GrantedAt dbTime `db:"granted_at"`
}

func (r grantRow) grant() model.Grant {
	return model.Grant{AgentID: r.AgentID, Principal: r.Principal, Role: r.Role, GrantedAt: r.GrantedAt.T}
}

func grantsFromRows(rows []grantRow) []model.Grant {
	out := make([]model.Grant, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.grant())
	}
	return out
}

// PutGrant creates or replaces the grant for (agent, principal) and reports
// whether it was created. A replaced grant takes the new role and
// granted_at (now when zero). A missing agent is ErrNotFound.
func (s *SQL) PutGrant(ctx context.Context, g model.Grant) (model.Grant, bool, error) {
	op := fmt.Sprintf("put grant %q on agent %d", g.Principal, g.AgentID)
	g.GrantedAt = orNow(g.GrantedAt, s.now)
	at := s.timeArg(g.GrantedAt)
	// Insert-or-update without a dialect-specific "was it inserted" trick:
	// try the insert, and update if the row was already there. A grant
	// deleted between the two statements makes the update miss; retry.
	for attempt := 0; attempt < 3; attempt++ {
		res, err := s.db.ExecContext(ctx, s.db.Rebind(
			`INSERT INTO agent_grants (agent_id, principal, role, granted_at) VALUES (?, ?, ?, ?)
			 ON CONFLICT (agent_id, principal) DO NOTHING`),
			g.AgentID, g.Principal, g.Role, at)
		if isForeignKeyViolation(err) {
			return model.Grant{}, false, fmt.Errorf("store: %s: agent %d: %w", op, g.AgentID, model.ErrNotFound)
		}
		if err != nil {
			return model.Grant{}, false, dbError(op, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return model.Grant{}, false, dbError(op, err)
		} else if n == 1 {
			return g, true, nil
		}
		res, err = s.db.ExecContext(ctx, s.db.Rebind(
			`UPDATE agent_grants SET role = ?, granted_at = ? WHERE agent_id = ? AND principal = ?`),
			g.Role, at, g.AgentID, g.Principal)
		if err != nil {
			return model.Grant{}, false, dbError(op, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return model.Grant{}, false, dbError(op, err)
		} else if n == 1 {
			return g, false, nil
		}
	}
	return model.Grant{}, false, fmt.Errorf("store: %s: %w: grant kept changing under concurrent writers", op, model.ErrConflict)
}

// DeleteGrant removes the grant for (agent, principal); ErrNotFound if there
// is none.
func (s *SQL) DeleteGrant(ctx context.Context, agentID int64, principal string) error {
	op := fmt.Sprintf("delete grant %q on agent %d", principal, agentID)
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM agent_grants WHERE agent_id = ? AND principal = ?`), agentID, principal)
	if err != nil {
		return dbError(op, err)
	}
	return expectOneRow(op, res)
}

// ListGrants returns the agent's grants ordered by principal. An unknown
// agent has no grants.
func (s *SQL) ListGrants(ctx context.Context, agentID int64) ([]model.Grant, error) {
	var rows []grantRow
	err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT `+grantColumns+` FROM agent_grants WHERE agent_id = ? ORDER BY principal`), agentID)
	if err != nil {
		return nil, dbError(fmt.Sprintf("list grants of agent %d", agentID), err)
	}
	return grantsFromRows(rows), nil
}

// GrantsFor returns the grants on the given agents whose principal is one of
// principals, ordered by agent and principal. Either list empty means no
// grants, without a query.
func (s *SQL) GrantsFor(ctx context.Context, agentIDs []int64, principals []string) ([]model.Grant, error) {
	out := []model.Grant{}
	if len(agentIDs) == 0 || len(principals) == 0 {
		return out, nil
	}
	ids := slices.Compact(slices.Sorted(slices.Values(agentIDs)))
	for start := 0; start < len(ids); start += inListBatch {
		batch := ids[start:min(start+inListBatch, len(ids))]
		query, args, err := sqlx.In(`SELECT `+grantColumns+` FROM agent_grants
			WHERE agent_id IN (?) AND principal IN (?) ORDER BY agent_id, principal`, batch, principals)
		if err != nil {
			return nil, fmt.Errorf("store: grants for agents: %w", err)
		}
		var rows []grantRow
		if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(query), args...); err != nil {
			return nil, dbError("grants for agents", err)
		}
		out = append(out, grantsFromRows(rows)...)
	}
	return out, nil
}
