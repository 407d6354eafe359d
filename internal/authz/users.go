package authz

import (
	"context"
	"errors"
	"strconv"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// CreateUserRequest asks for a new user.
type CreateUserRequest struct {
	Login string
	Name  string
	Roles []string
}

// CreateUser creates a user with roles the active policy defines.
func (s *Service) CreateUser(ctx context.Context, p *principal.Principal, req CreateUserRequest) (model.User, error) {
	if err := validLogin(req.Login); err != nil {
		return model.User{}, err
	}
	if err := validName("name", req.Name); err != nil {
		return model.User{}, err
	}
	if err := s.validUserRoles(req.Roles); err != nil {
		return model.User{}, err
	}
	f := (&facts{ability: "create-user", principal: p}).request("user_request", item("roles", stringsTerm(req.Roles)))
	if _, err := s.require(ctx, f); err != nil {
		return model.User{}, err
	}
	name := req.Name
	if name == "" {
		name = req.Login
	}
	u, err := s.st.CreateUser(ctx, model.User{Login: req.Login, Name: name, Roles: req.Roles, Status: model.StatusActive, CreatedAt: s.cfg.Now().UTC()})
	if errors.Is(err, model.ErrConflict) {
		return u, conflict("login_taken", "a user with login %q already exists", req.Login)
	}
	return u, storeErr(err)
}

// ListUsers lists every user.
func (s *Service) ListUsers(ctx context.Context, p *principal.Principal) ([]model.User, error) {
	if _, err := s.require(ctx, &facts{ability: "list-users", principal: p}); err != nil {
		return nil, err
	}
	us, err := s.st.ListUsers(ctx)
	if err != nil {
		return nil, storeErr(err)
	}
	if us == nil {
		us = []model.User{}
	}
	return us, nil
}

// UserUpdate is a partial update; nil fields are left alone.
type UserUpdate struct {
	Name   *string
	Roles  *[]string
	Status *string
}

// UpdateUser changes a user's name, roles or status. The tokens of the
// user's agents are evicted so a narrowed or disabled owner binds at once.
func (s *Service) UpdateUser(ctx context.Context, p *principal.Principal, ref string, u UserUpdate) (model.User, error) {
	if u.Name != nil {
		if err := validName("name", *u.Name); err != nil {
			return model.User{}, err
		}
	}
	if u.Roles != nil {
		if err := s.validUserRoles(*u.Roles); err != nil {
			return model.User{}, err
		}
	}
	if u.Status != nil && *u.Status != model.StatusActive && *u.Status != model.StatusDisabled {
		return model.User{}, invalid("invalid_status", "status", "status must be %q or %q, not %q", model.StatusActive, model.StatusDisabled, clip(*u.Status))
	}
	if u.Name == nil && u.Roles == nil && u.Status == nil {
		return model.User{}, invalid("empty_update", "", "nothing to update: give name, roles or status")
	}
	// Authorize before looking the user up, so that a caller who may not
	// manage users cannot tell an existing login from a missing one; then
	// again with the target, whose current roles a re-enable confers.
	if _, err := s.require(ctx, u.facts(p, nil)); err != nil {
		return model.User{}, err
	}
	target, err := s.findUser(ctx, ref)
	if err != nil {
		return model.User{}, err
	}
	if _, err := s.require(ctx, u.facts(p, &target)); err != nil {
		return model.User{}, err
	}
	out, err := s.st.UpdateUser(ctx, target.ID, model.UserPatch{Name: u.Name, Roles: u.Roles, Status: u.Status})
	if errors.Is(err, model.ErrNotFound) {
		return out, notFound("user_not_found", "user %q not found", ref)
	}
	if err != nil {
		return out, storeErr(err)
	}
	s.evict.EvictOwner(out.ID)
	return out, nil
}

// facts renders the update as the policy's user_request (only the keys it
// sets) and, once known, the target as target_user.
func (u UserUpdate) facts(p *principal.Principal, target *model.User) *facts {
	var fields [][2]*ast.Term
	if u.Name != nil {
		fields = append(fields, item("name", str(*u.Name)))
	}
	if u.Roles != nil {
		fields = append(fields, item("roles", stringsTerm(*u.Roles)))
	}
	if u.Status != nil {
		fields = append(fields, item("status", str(*u.Status)))
	}
	f := (&facts{ability: "update-user", principal: p, resource: target}).request("user_request", fields...)
	if target != nil {
		f.requests = append(f.requests, item("target_user", userTerm(target)))
	}
	return f
}

// findUser resolves a login or a numeric id.
func (s *Service) findUser(ctx context.Context, ref string) (model.User, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil && id > 0 {
		u, err := s.st.GetUser(ctx, id)
		if err == nil || !errors.Is(err, model.ErrNotFound) {
			return u, storeErr(err)
		}
	}
	if !loginRe.MatchString(ref) {
		return model.User{}, invalid("invalid_user", "user", "user %q is neither an id nor a valid login", clip(ref))
	}
	u, err := s.st.GetUserByLogin(ctx, ref)
	if errors.Is(err, model.ErrNotFound) {
		return u, notFound("user_not_found", "user %q not found", ref)
	}
	return u, storeErr(err)
}

// PrincipalFor turns a principal reference ("user:<id|login>",
// "audience:<name>", a bare audience name) into the principal the CLI's --as
// acts as. "audience:public" is the anonymous caller.
func (s *Service) PrincipalFor(ctx context.Context, ref string) (*principal.Principal, error) {
	r, err := principal.ParseRef(ref)
	if err != nil {
		return nil, invalid("invalid_principal", "as", "%v", err)
	}
	if r.Type != "user" {
		id := r.String()
		if id == principal.PublicAudience {
			return principal.Anonymous(), nil
		}
		return principal.ForAudiences([]string{id}), nil
	}
	u, err := s.findUser(ctx, r.Name)
	if err != nil {
		return nil, err
	}
	return principal.ForUser(&u, nil), nil
}
