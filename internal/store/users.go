package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/agentauthz/agentauthz/internal/model"
)

const userColumns = "id, login, name, roles, status, created_at"

// userRow is a users row as stored.
type userRow struct {
	ID        int64  `db:"id"`
	Login     string `db:"login"`
	Name      string `db:"name"`
	Roles     string `db:"roles"`
	Status    string `db:"status"`
	CreatedAt dbTime `db:"created_at"`
}

func (r userRow) user() (model.User, error) {
	roles, err := unmarshalStrings(r.Roles)
	if err != nil {
		return model.User{}, corruptRow(fmt.Sprintf("user %d roles", r.ID), err)
	}
	return model.User{ID: r.ID, Login: r.Login, Name: r.Name, Roles: roles, Status: intern(r.Status), CreatedAt: r.CreatedAt.T}, nil
}

// CreateUser inserts u and returns it as stored. The id is assigned; an
// empty Status is active and a zero CreatedAt is now.
func (s *SQL) CreateUser(ctx context.Context, u model.User) (model.User, error) {
	op := fmt.Sprintf("create user %q", u.Login)
	roles, err := marshalStrings(u.Roles)
	if err != nil {
		return model.User{}, fmt.Errorf("store: %s: roles: %w", op, err)
	}
	if u.Status == "" {
		u.Status = model.StatusActive
	}
	var r userRow
	err = s.db.GetContext(ctx, &r, s.db.Rebind(
		`INSERT INTO users (login, name, roles, status, created_at) VALUES (?, ?, ?, ?, ?) RETURNING `+userColumns),
		u.Login, u.Name, roles, u.Status, s.timeArg(orNow(u.CreatedAt, s.now)))
	if err != nil {
		return model.User{}, dbError(op, err)
	}
	return r.user()
}

// GetUser returns the user with id.
func (s *SQL) GetUser(ctx context.Context, id int64) (model.User, error) {
	return s.getUser(ctx, fmt.Sprintf("get user %d", id), `SELECT `+userColumns+` FROM users WHERE id = ?`, id)
}

// GetUserByLogin returns the user with login.
func (s *SQL) GetUserByLogin(ctx context.Context, login string) (model.User, error) {
	return s.getUser(ctx, fmt.Sprintf("get user %q", login), `SELECT `+userColumns+` FROM users WHERE login = ?`, login)
}

func (s *SQL) getUser(ctx context.Context, op, query string, arg any) (model.User, error) {
	var r userRow
	if err := s.db.GetContext(ctx, &r, s.db.Rebind(query), arg); err != nil {
		return model.User{}, dbError(op, err)
	}
	return r.user()
}

// GetUsers returns the users with the given ids, ordered by id; ids that
// do not exist are skipped.
func (s *SQL) GetUsers(ctx context.Context, ids []int64) ([]model.User, error) {
	out := []model.User{}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	for start := 0; start < len(ids); start += inListBatch {
		batch := ids[start:min(start+inListBatch, len(ids))]
		query, args, err := sqlx.In(`SELECT `+userColumns+` FROM users WHERE id IN (?) ORDER BY id`, batch)
		if err != nil {
			return nil, fmt.Errorf("store: get users: %w", err)
		}
		var rows []userRow
		if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(query), args...); err != nil {
			return nil, dbError("get users", err)
		}
		if out, err = appendUsers(out, rows); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ListUsers returns every user ordered by id.
func (s *SQL) ListUsers(ctx context.Context) ([]model.User, error) {
	var rows []userRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+userColumns+` FROM users ORDER BY id`); err != nil {
		return nil, dbError("list users", err)
	}
	return appendUsers(make([]model.User, 0, len(rows)), rows)
}

// ListUsersAfter returns at most limit users with an id above afterID,
// ordered by id.
func (s *SQL) ListUsersAfter(ctx context.Context, afterID int64, limit int) ([]model.User, error) {
	var rows []userRow
	query := s.db.Rebind(`SELECT ` + userColumns + ` FROM users WHERE id > ? ORDER BY id LIMIT ?`)
	if err := s.db.SelectContext(ctx, &rows, query, afterID, limit); err != nil {
		return nil, dbError("list users", err)
	}
	return appendUsers(make([]model.User, 0, len(rows)), rows)
}

// appendUsers decodes rows onto out.
func appendUsers(out []model.User, rows []userRow) ([]model.User, error) {
	for _, r := range rows {
		u, err := r.user()
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// UpdateUser applies p to the user with id and returns the result.
func (s *SQL) UpdateUser(ctx context.Context, id int64, p model.UserPatch) (model.User, error) {
	op := fmt.Sprintf("update user %d", id)
	var sets []string
	var args []any
	if p.Name != nil {
		sets, args = append(sets, "name = ?"), append(args, *p.Name)
	}
	if p.Roles != nil {
		roles, err := marshalStrings(*p.Roles)
		if err != nil {
			return model.User{}, fmt.Errorf("store: %s: roles: %w", op, err)
		}
		sets, args = append(sets, "roles = ?"), append(args, roles)
	}
	if p.Status != nil {
		sets, args = append(sets, "status = ?"), append(args, *p.Status)
	}
	if len(sets) == 0 {
		return s.GetUser(ctx, id)
	}
	var r userRow
	query := `UPDATE users SET ` + strings.Join(sets, ", ") + ` WHERE id = ? RETURNING ` + userColumns
	if err := s.db.GetContext(ctx, &r, s.db.Rebind(query), append(args, id)...); err != nil {
		return model.User{}, dbError(op, err)
	}
	return r.user()
}
