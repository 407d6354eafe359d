package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
)

const tokenColumns = "id, agent_id, token_hash, token_prefix, label, capabilities, last_used_at, expires_at, created_at, revoked_at, parent_token_id"

// tokenRow is an agent_tokens row as stored.
type tokenRow struct {
	ID           int64   `db:"id"`
	AgentID      int64   `db:"agent_id"`
	Hash         string  `db:"token_hash"`
	Prefix       string  `db:"token_prefix"`
	Label        string  `db:"label"`
	Capabilities *string `db:"capabilities"`
	LastUsedAt   dbTime  `db:"last_used_at"`
	ExpiresAt    dbTime  `db:"expires_at"`
	CreatedAt    dbTime  `db:"created_at"`
	RevokedAt    dbTime  `db:"revoked_at"`
	ParentID     *int64  `db:"parent_token_id"`
}

func (r tokenRow) token() (Token, error) {
	caps, err := unmarshalCapabilities(r.Capabilities)
	if err != nil {
		return Token{}, corruptRow(fmt.Sprintf("token %d capabilities", r.ID), err)
	}
	return Token{
		ID: r.ID, AgentID: r.AgentID, Hash: r.Hash, Prefix: r.Prefix, Label: r.Label,
		Capabilities: caps, LastUsedAt: r.LastUsedAt.ptr(), ExpiresAt: r.ExpiresAt.ptr(),
		CreatedAt: r.CreatedAt.T, RevokedAt: r.RevokedAt.ptr(), ParentID: r.ParentID,
	}, nil
}

// CreateToken inserts t and returns it as stored. The id is assigned and a
// zero CreatedAt is now. A missing agent is ErrNotFound, a hash already
// stored ErrConflict. A child token (ParentID set) is inserted only while
// its parent is live: the parent row is locked first, so a revocation
// racing the mint either sees the child (and revokes it) or makes the mint
// fail with ErrParentRevoked.
func (s *SQL) CreateToken(ctx context.Context, t Token) (Token, error) {
	op := fmt.Sprintf("create token for agent %d", t.AgentID)
	caps, err := MarshalCapabilities(t.Capabilities)
	if err != nil {
		return Token{}, fmt.Errorf("store: %s: capabilities: %w", op, err)
	}
	var r tokenRow
	err = s.inTx(ctx, op, func(tx *sqlx.Tx) error {
		if t.ParentID != nil {
			var live []int64
			err := tx.SelectContext(ctx, &live, tx.Rebind(
				`SELECT id FROM agent_tokens WHERE id = ? AND revoked_at IS NULL`+s.d.shareLock), *t.ParentID)
			if err != nil {
				return dbError(op+": parent", err)
			}
			if len(live) == 0 {
				return fmt.Errorf("store: %s: parent token %d: %w", op, *t.ParentID, ErrParentRevoked)
			}
		}
		err := tx.GetContext(ctx, &r, tx.Rebind(
			`INSERT INTO agent_tokens (agent_id, token_hash, token_prefix, label, capabilities, last_used_at, expires_at, created_at, revoked_at, parent_token_id)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+tokenColumns),
			t.AgentID, t.Hash, t.Prefix, t.Label, caps, s.nullTimeArg(t.LastUsedAt), s.nullTimeArg(t.ExpiresAt),
			s.timeArg(orNow(t.CreatedAt, s.now)), s.nullTimeArg(t.RevokedAt), t.ParentID)
		if isForeignKeyViolation(err) {
			return fmt.Errorf("store: %s: agent %d: %w", op, t.AgentID, ErrNotFound)
		}
		if err != nil {
			return dbError(op, err)
		}
		return nil
	})
	if err != nil {
		return Token{}, err
	}
	return r.token()
}

// ListTokens returns the agent's tokens, revoked ones included, ordered by
// id. An unknown agent has no tokens.
func (s *SQL) ListTokens(ctx context.Context, agentID int64) ([]Token, error) {
	var rows []tokenRow
	err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT `+tokenColumns+` FROM agent_tokens WHERE agent_id = ? ORDER BY id`), agentID)
	if err != nil {
		return nil, dbError(fmt.Sprintf("list tokens of agent %d", agentID), err)
	}
	out := make([]Token, 0, len(rows))
	for _, r := range rows {
		t, err := r.token()
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// RevokeToken sets revoked_at on the token if it belongs to agentID
// (ErrNotFound otherwise), then on every token minted from it, transitively,
// in the same transaction. Revoking a revoked token keeps the first
// revoked_at and succeeds (and still sweeps its descendants).
func (s *SQL) RevokeToken(ctx context.Context, agentID, tokenID int64, at time.Time) (Token, []int64, error) {
	op := fmt.Sprintf("revoke token %d of agent %d", tokenID, agentID)
	var (
		r           tokenRow
		descendants []int64
	)
	err := s.inTx(ctx, op, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &r, tx.Rebind(
			`UPDATE agent_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND agent_id = ? RETURNING `+tokenColumns),
			s.timeArg(at), tokenID, agentID)
		if err != nil {
			return dbError(op, err)
		}
		descendants, err = s.revokeDescendants(ctx, tx, op, `SELECT id FROM agent_tokens WHERE parent_token_id = ?`, tokenID, at)
		return err
	})
	if err != nil {
		return Token{}, nil, err
	}
	t, err := r.token()
	return t, descendants, err
}

// revokeDescendants revokes every token below the roots that rootsQuery
// (one "?" parameter, arg) selects as first-generation children, and
// returns their ids in ascending order.
func (s *SQL) revokeDescendants(ctx context.Context, tx *sqlx.Tx, op, rootsQuery string, arg any, at time.Time) ([]int64, error) {
	var ids []int64
	err := tx.SelectContext(ctx, &ids, tx.Rebind(
		`WITH RECURSIVE tree(id) AS (`+rootsQuery+`
		   UNION SELECT t.id FROM agent_tokens t JOIN tree ON t.parent_token_id = tree.id)
		 UPDATE agent_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id IN (SELECT id FROM tree) RETURNING id`),
		arg, s.timeArg(at))
	if err != nil {
		return nil, dbError(op+": descendants", err)
	}
	slices.Sort(ids)
	return ids, nil
}

// RevokeAllTokens revokes every live token of the agent and reports how
// many it revoked. An unknown agent is ErrNotFound.
func (s *SQL) RevokeAllTokens(ctx context.Context, agentID int64, at time.Time) (int, error) {
	op := fmt.Sprintf("revoke tokens of agent %d", agentID)
	var n int64
	err := s.inTx(ctx, op, func(tx *sqlx.Tx) error {
		var one int
		if err := tx.GetContext(ctx, &one, tx.Rebind(`SELECT 1 FROM agents WHERE id = ?`), agentID); err != nil {
			return dbError(op, err)
		}
		res, err := tx.ExecContext(ctx, tx.Rebind(
			`UPDATE agent_tokens SET revoked_at = ? WHERE agent_id = ? AND revoked_at IS NULL`),
			s.timeArg(at), agentID)
		if err != nil {
			return dbError(op, err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return dbError(op, err)
		}
		return nil
	})
	return int(n), err
}

// resolveQuery is the one indexed lookup behind ResolveTokenHash.
const resolveQuery = `SELECT t.id, t.agent_id, t.token_hash, t.token_prefix, t.label, t.capabilities,
        t.last_used_at, t.expires_at, t.created_at, t.revoked_at, t.parent_token_id,
        a.id, a.slug, a.name, a.owner_id, a.status, a.tool_policy, a.created_at, a.updated_at,
        u.id, u.login, u.name, u.roles, u.status, u.created_at
   FROM agent_tokens t
   JOIN agents a ON a.id = t.agent_id
   LEFT JOIN users u ON u.id = a.owner_id
  WHERE t.token_hash = ?`

// resolveStmt prepares resolveQuery once. A prepared statement saves
// PostgreSQL a parse per request and lib/pq a round trip (an unprepared
// parameterised query costs two). Preparing fails before migrations have
// created the tables; the caller then runs the query directly and the next
// call tries again.
func (s *SQL) resolveStmt(ctx context.Context) *sqlx.Stmt {
	if stmt := s.resolve.Load(); stmt != nil {
		return stmt
	}
	s.resolveMu.Lock()
	defer s.resolveMu.Unlock()
	if stmt := s.resolve.Load(); stmt != nil {
		return stmt
	}
	stmt, err := s.db.PreparexContext(ctx, s.db.Rebind(resolveQuery))
	if err != nil {
		return nil
	}
	s.resolve.Store(stmt)
	return stmt
}

// ResolveTokenHash is the hot-path lookup: one indexed query by hash
// returning the token, its agent and the agent's owner (nil if the owner row
// is missing). It does not judge liveness.
func (s *SQL) ResolveTokenHash(ctx context.Context, hash string) (Resolved, error) {
	var (
		t       tokenRow
		a       agentRow
		ownerID *int64
		login   *string
		name    *string
		roles   *string
		status  *string
		created dbTime
	)
	var row *sqlx.Row
	if stmt := s.resolveStmt(ctx); stmt != nil {
		row = stmt.QueryRowxContext(ctx, hash)
	} else {
		row = s.db.QueryRowxContext(ctx, s.db.Rebind(resolveQuery), hash)
	}
	err := row.Scan(
		&t.ID, &t.AgentID, &t.Hash, &t.Prefix, &t.Label, &t.Capabilities,
		&t.LastUsedAt, &t.ExpiresAt, &t.CreatedAt, &t.RevokedAt, &t.ParentID,
		&a.ID, &a.Slug, &a.Name, &a.OwnerID, &a.Status, &a.ToolPolicy, &a.CreatedAt, &a.UpdatedAt,
		&ownerID, &login, &name, &roles, &status, &created)
	if err != nil {
		// The hash is a credential's fingerprint: keep it out of messages.
		return Resolved{}, dbError("resolve token hash", err)
	}
	var res Resolved
	if res.Token, err = t.token(); err != nil {
		return Resolved{}, err
	}
	if res.Agent, err = a.agent(); err != nil {
		return Resolved{}, err
	}
	if ownerID != nil {
		u, err := userRow{ID: *ownerID, Login: *login, Name: *name, Roles: *roles, Status: *status, CreatedAt: created}.user()
		if err != nil {
			return Resolved{}, err
		}
		res.Owner = &u
	}
	return res, nil
}

// TouchTokens records last_used_at for many tokens in one transaction with
// one prepared statement; it never moves a timestamp backwards. Tokens are
// updated in id order so concurrent callers lock rows in the same order.
func (s *SQL) TouchTokens(ctx context.Context, used map[int64]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(used))
	for id := range used {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	const op = "touch tokens"
	return s.inTx(ctx, op, func(tx *sqlx.Tx) error {
		stmt, err := tx.PreparexContext(ctx, tx.Rebind(
			`UPDATE agent_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`))
		if err != nil {
			return dbError(op, err)
		}
		defer stmt.Close()
		for _, id := range ids {
			at := s.timeArg(used[id])
			if _, err := stmt.ExecContext(ctx, at, id, at); err != nil {
				return dbError(fmt.Sprintf("%s: token %d", op, id), err)
			}
		}
		return nil
	})
}
