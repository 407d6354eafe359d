package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/agentauthz/agentauthz/internal/model"
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

func (r tokenRow) token() (model.Token, error) {
	caps, err := unmarshalCapabilities(r.Capabilities)
	if err != nil {
		return model.Token{}, corruptRow(fmt.Sprintf("token %d capabilities", r.ID), err)
	}
	return model.Token{
		ID: r.ID, AgentID: r.AgentID, Hash: r.Hash, Prefix: r.Prefix, Label: r.Label,
		Capabilities: caps, LastUsedAt: r.LastUsedAt.ptr(), ExpiresAt: r.ExpiresAt.ptr(),
		CreatedAt: r.CreatedAt.T, RevokedAt: r.RevokedAt.ptr(), ParentID: r.ParentID,
	}, nil
}

// CreateToken inserts t and returns it as stored. The id is assigned and a
// zero CreatedAt is now. A missing agent is ErrNotFound, a hash already
// stored ErrConflict. A child token (ParentID set) under a revoked parent
// is ErrParentRevoked; a revocation racing the mint is settled when the
// child is resolved (its lineage has ended).
func (s *SQL) CreateToken(ctx context.Context, t model.Token) (model.Token, error) {
	op := fmt.Sprintf("create token for agent %d", t.AgentID)
	caps, err := marshalCapabilities(t.Capabilities)
	if err != nil {
		return model.Token{}, fmt.Errorf("store: %s: capabilities: %w", op, err)
	}
	var r tokenRow
	err = s.inTx(ctx, op, func(tx *sqlx.Tx) error {
		if t.ParentID != nil {
			// A friendly refusal only: a revocation racing this mint is
			// settled at resolution, which refuses a token whose lineage
			// has ended.
			var live []int64
			err := tx.SelectContext(ctx, &live, tx.Rebind(
				`SELECT id FROM agent_tokens WHERE id = ? AND revoked_at IS NULL`), *t.ParentID)
			if err != nil {
				return dbError(op+": parent", err)
			}
			ended := len(live) == 0
			if !ended {
				if ended, err = s.lineageEnded(ctx, tx, *t.ParentID); err != nil {
					return err
				}
			}
			if ended {
				return fmt.Errorf("store: %s: parent token %d: %w", op, *t.ParentID, model.ErrParentRevoked)
			}
		}
		err := tx.GetContext(ctx, &r, tx.Rebind(
			`INSERT INTO agent_tokens (agent_id, token_hash, token_prefix, label, capabilities, last_used_at, expires_at, created_at, revoked_at, parent_token_id)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+tokenColumns),
			t.AgentID, t.Hash, t.Prefix, t.Label, caps, s.nullTimeArg(t.LastUsedAt), s.nullTimeArg(t.ExpiresAt),
			s.timeArg(orNow(t.CreatedAt, s.now)), s.nullTimeArg(t.RevokedAt), t.ParentID)
		if isForeignKeyViolation(err) {
			return fmt.Errorf("store: %s: agent %d: %w", op, t.AgentID, model.ErrNotFound)
		}
		if err != nil {
			return dbError(op, err)
		}
		return nil
	})
	if err != nil {
		return model.Token{}, err
	}
	return r.token()
}

// ListTokens returns the agent's tokens, revoked ones included, ordered by
// id. An unknown agent has no tokens.
func (s *SQL) ListTokens(ctx context.Context, agentID int64) ([]model.Token, error) {
	var rows []tokenRow
	err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT `+tokenColumns+` FROM agent_tokens WHERE agent_id = ? ORDER BY id`), agentID)
	if err != nil {
		return nil, dbError(fmt.Sprintf("list tokens of agent %d", agentID), err)
	}
	out := make([]model.Token, 0, len(rows))
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
// (ErrNotFound otherwise), then on every token minted from it, transitively.
// Revoking a revoked token keeps the first revoked_at and succeeds (and
// still sweeps its descendants). The sweep runs once more after the commit,
// for a child a racing mint committed meanwhile; a child committed later
// never resolves anyway (its lineage has ended).
func (s *SQL) RevokeToken(ctx context.Context, agentID, tokenID int64, at time.Time) (model.Token, []int64, error) {
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
		descendants, err = s.revokeBelow(ctx, tx, op, []int64{tokenID}, at)
		return err
	})
	if err != nil {
		return model.Token{}, nil, err
	}
	// Best effort: the revocation has committed, and a child a racing mint
	// committed meanwhile is refused at resolution whether or not its row
	// is marked; an error here must not hide the commit from the caller
	// (which would then skip its cache eviction).
	late, _ := s.revokeBelow(ctx, s.db, op, []int64{tokenID}, at)
	t, err := r.token()
	return t, sortedUnion(descendants, late), err
}

// revokeBelow marks every live token below roots (their children, and
// theirs, transitively) revoked at at, and returns their ids in ascending
// order. It is the audit trail and the eviction list of a revocation; the
// guarantee that no descendant resolves is resolveLineage's.
func (s *SQL) revokeBelow(ctx context.Context, q sqlx.ExtContext, op string, roots []int64, at time.Time) ([]int64, error) {
	if len(roots) == 0 {
		return nil, nil
	}
	query, args, err := sqlx.In(
		`WITH RECURSIVE tree(id) AS (
		   SELECT id FROM agent_tokens WHERE parent_token_id IN (?)
		   UNION SELECT t.id FROM agent_tokens t JOIN tree ON t.parent_token_id = tree.id)
		 UPDATE agent_tokens SET revoked_at = ? WHERE id IN (SELECT id FROM tree) AND revoked_at IS NULL RETURNING id`,
		roots, s.timeArg(at))
	if err != nil {
		return nil, fmt.Errorf("store: %s: descendants: %w", op, err)
	}
	var ids []int64
	if err := sqlx.SelectContext(ctx, q, &ids, q.Rebind(query), args...); err != nil {
		return nil, dbError(op+": descendants", err)
	}
	slices.Sort(ids)
	return ids, nil
}

func sortedUnion(a, b []int64) []int64 {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// resolveColumns is what ResolveTokenHash and ResolveTokenID read.
const resolveColumns = `SELECT t.id, t.agent_id, t.token_hash, t.token_prefix, t.label, t.capabilities,
        t.last_used_at, t.expires_at, t.created_at, t.revoked_at, t.parent_token_id,
        a.id, a.slug, a.name, a.owner_id, a.status, a.tool_policy, a.created_at, a.updated_at,
        u.id, u.login, u.name, u.roles, u.status, u.created_at
   FROM agent_tokens t
   JOIN agents a ON a.id = t.agent_id
   LEFT JOIN users u ON u.id = a.owner_id`

// resolveQuery is the one indexed lookup behind ResolveTokenHash.
const resolveQuery = resolveColumns + `
  WHERE t.token_hash = ?`

// resolveIDQuery is the lookup by primary key behind ResolveTokenID.
const resolveIDQuery = resolveColumns + `
  WHERE t.id = ?`

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
func (s *SQL) ResolveTokenHash(ctx context.Context, hash string) (model.Resolved, error) {
	var row *sqlx.Row
	if stmt := s.resolveStmt(ctx); stmt != nil {
		row = stmt.QueryRowxContext(ctx, hash)
	} else {
		row = s.db.QueryRowxContext(ctx, s.db.Rebind(resolveQuery), hash)
	}
	// The hash is a credential's fingerprint: keep it out of messages.
	return s.scanResolved(ctx, row, "resolve token hash")
}

// ResolveTokenID returns a token by id with its agent and the agent's owner,
// exactly as ResolveTokenHash does (for callers that name a token by its id,
// such as an AuthZEN subject). It does not judge liveness.
func (s *SQL) ResolveTokenID(ctx context.Context, id int64) (model.Resolved, error) {
	row := s.db.QueryRowxContext(ctx, s.db.Rebind(resolveIDQuery), id)
	return s.scanResolved(ctx, row, "resolve token id")
}

// scanResolved reads one row of resolveColumns.
func (s *SQL) scanResolved(ctx context.Context, row *sqlx.Row, op string) (model.Resolved, error) {
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
	err := row.Scan(
		&t.ID, &t.AgentID, &t.Hash, &t.Prefix, &t.Label, &t.Capabilities,
		&t.LastUsedAt, &t.ExpiresAt, &t.CreatedAt, &t.RevokedAt, &t.ParentID,
		&a.ID, &a.Slug, &a.Name, &a.OwnerID, &a.Status, &a.ToolPolicy, &a.CreatedAt, &a.UpdatedAt,
		&ownerID, &login, &name, &roles, &status, &created)
	if err != nil {
		return model.Resolved{}, dbError(op, err)
	}
	var res model.Resolved
	if res.Token, err = t.token(); err != nil {
		return model.Resolved{}, err
	}
	if res.Agent, err = a.agent(); err != nil {
		return model.Resolved{}, err
	}
	if ownerID != nil {
		u, err := userRow{ID: *ownerID, Login: *login, Name: *name, Roles: *roles, Status: *status, CreatedAt: created}.user()
		if err != nil {
			return model.Resolved{}, err
		}
		res.Owner = &u
	}
	if res.Token.ParentID != nil {
		if res.LineageEnded, err = s.lineageEnded(ctx, s.db, *res.Token.ParentID); err != nil {
			return model.Resolved{}, err
		}
	}
	return res, nil
}

// maxLineage bounds the walk up a token's lineage; minting chains are short,
// and a longer one (or a cycle, which ids ascending make impossible) counts
// as ended.
const maxLineage = 64

// lineageEnded walks from parentID up to the first token minted by a user
// and reports whether any of them is revoked or no longer exists. Only
// minted tokens pay for it, with one indexed query.
func (s *SQL) lineageEnded(ctx context.Context, q sqlx.ExtContext, parentID int64) (bool, error) {
	var rows []struct {
		ID       int64   `db:"id"`
		ParentID *int64  `db:"parent_token_id"`
		Revoked  *string `db:"revoked"`
	}
	err := sqlx.SelectContext(ctx, q, &rows, q.Rebind(
		`WITH RECURSIVE up(id, parent_token_id, revoked, depth) AS (
		   SELECT id, parent_token_id, CASE WHEN revoked_at IS NULL THEN NULL ELSE 'r' END, 1 FROM agent_tokens WHERE id = ?
		   UNION ALL
		   SELECT t.id, t.parent_token_id, CASE WHEN t.revoked_at IS NULL THEN NULL ELSE 'r' END, up.depth + 1
		     FROM agent_tokens t JOIN up ON t.id = up.parent_token_id WHERE up.depth < ?)
		 SELECT id, parent_token_id, revoked FROM up`), parentID, maxLineage)
	if err != nil {
		return false, dbError("resolve token lineage", err)
	}
	found := make(map[int64]bool, len(rows))
	for _, r := range rows {
		if r.Revoked != nil {
			return true, nil
		}
		found[r.ID] = true
	}
	// every link must be there: a missing row is a deleted ancestor
	if !found[parentID] {
		return true, nil
	}
	for _, r := range rows {
		if r.ParentID != nil && !found[*r.ParentID] {
			return true, nil
		}
	}
	return false, nil
}

// touchChunk is the most rows one TouchTokens statement updates. On SQLite
// the pool's only connection is busy while it runs (a few µs a row:
// BenchmarkTouchTokens), so lookups queued behind a large flush run between
// chunks.
const touchChunk = 500

// TouchTokens records last_used_at for many tokens, touchChunk rows per
// statement: the chunk travels as one JSON parameter, {"<id>": "<at>", …},
// which the dialect's touchQuery unpacks (jsonb_each_text on PostgreSQL,
// json_each on SQLite), so a flush costs one statement per chunk (two round
// trips with lib/pq) rather than one per token. It never moves a timestamp
// backwards. Chunks are cut from the sorted ids and PostgreSQL's statement
// locks its rows in id order, so concurrent callers lock rows in the same
// order.
//
// The batch is not atomic: on an error the chunks before it stay committed.
// That is harmless, because a retry of the whole batch cannot move any
// timestamp backwards.
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
	var buf []byte
	for chunk := range slices.Chunk(ids, touchChunk) {
		buf = append(buf[:0], '{')
		for i, id := range chunk {
			if i > 0 {
				buf = append(buf, ',')
			}
			// Both are plain text: a decimal id and a fixed-width UTC time,
			// which PostgreSQL reads as a timestamptz and SQLite stores
			// and compares as text (its column's own format).
			buf = append(buf, '"')
			buf = strconv.AppendInt(buf, id, 10)
			buf = append(buf, `":"`...)
			buf = normalTime(used[id]).AppendFormat(buf, sqliteTimeLayout)
			buf = append(buf, '"')
		}
		buf = append(buf, '}')
		if _, err := s.db.ExecContext(ctx, s.d.touchQuery, string(buf)); err != nil {
			return dbError(fmt.Sprintf("%s: %d tokens from id %d", op, len(chunk), chunk[0]), err)
		}
	}
	return nil
}
