package storetest

import (
	"testing"

	"github.com/agentauthz/agentauthz/internal/model"
)

var userRules = []rule{
	{"created user round-trips", func(t *testing.T, s model.Store) {
		in := model.User{Login: "ada", Name: "Ada", Roles: []string{"editor", "author"}, Status: model.StatusDisabled, CreatedAt: at(0)}
		got, err := s.CreateUser(ctx(t), in)
		noErr(t, "CreateUser", err)
		if got.ID <= 0 {
			t.Fatalf("CreateUser assigned id %d, want > 0", got.ID)
		}
		want := in
		want.ID = got.ID
		equal(t, "created", got, want)
		byID, err := s.GetUser(ctx(t), got.ID)
		noErr(t, "GetUser", err)
		equal(t, "GetUser", byID, want)
		byLogin, err := s.GetUserByLogin(ctx(t), "ada")
		noErr(t, "GetUserByLogin", err)
		equal(t, "GetUserByLogin", byLogin, want)
	}},
	{"new user defaults to active with no roles", func(t *testing.T, s model.Store) {
		u, err := s.CreateUser(ctx(t), model.User{Login: "bob"})
		noErr(t, "CreateUser", err)
		equal(t, "status", u.Status, model.StatusActive)
		equal(t, "roles", u.Roles, []string{})
		if u.CreatedAt.IsZero() {
			t.Error("CreatedAt is zero, want now")
		}
	}},
	{"get users returns the existing ones in id order, once each", func(t *testing.T, s model.Store) {
		a, _, c := mustUser(t, s, "ada"), mustUser(t, s, "bob"), mustUser(t, s, "cy")
		got, err := s.GetUsers(ctx(t), []int64{c.ID, a.ID, 999999, c.ID})
		noErr(t, "GetUsers", err)
		equal(t, "GetUsers", got, []model.User{a, c})
		none, err := s.GetUsers(ctx(t), nil)
		noErr(t, "GetUsers(nil)", err)
		equal(t, "GetUsers(nil)", none, []model.User{})
	}},
	{"duplicate login is a conflict", func(t *testing.T, s model.Store) {
		mustUser(t, s, "ada")
		_, err := s.CreateUser(ctx(t), model.User{Login: "ada"})
		isErr(t, "second CreateUser", err, model.ErrConflict)
	}},
	{"missing user is not found", func(t *testing.T, s model.Store) {
		_, err := s.GetUser(ctx(t), 4242)
		isErr(t, "GetUser", err, model.ErrNotFound)
		_, err = s.GetUserByLogin(ctx(t), "nobody")
		isErr(t, "GetUserByLogin", err, model.ErrNotFound)
		_, err = s.UpdateUser(ctx(t), 4242, model.UserPatch{Name: ptr("x")})
		isErr(t, "UpdateUser", err, model.ErrNotFound)
		_, err = s.UpdateUser(ctx(t), 4242, model.UserPatch{})
		isErr(t, "empty UpdateUser", err, model.ErrNotFound)
	}},
	{"update user changes only patched fields", func(t *testing.T, s model.Store) {
		u := mustUser(t, s, "ada")
		got, err := s.UpdateUser(ctx(t), u.ID, model.UserPatch{Roles: &[]string{"administrator"}})
		noErr(t, "UpdateUser roles", err)
		want := u
		want.Roles = []string{"administrator"}
		equal(t, "after roles patch", got, want)
		got, err = s.UpdateUser(ctx(t), u.ID, model.UserPatch{Name: ptr("Ada L."), Status: ptr(model.StatusDisabled)})
		noErr(t, "UpdateUser name+status", err)
		want.Name, want.Status = "Ada L.", model.StatusDisabled
		equal(t, "after name+status patch", got, want)
		stored, err := s.GetUser(ctx(t), u.ID)
		noErr(t, "GetUser", err)
		equal(t, "stored", stored, want)
	}},
	{"roles can be emptied", func(t *testing.T, s model.Store) {
		u := mustUser(t, s, "ada")
		got, err := s.UpdateUser(ctx(t), u.ID, model.UserPatch{Roles: &[]string{}})
		noErr(t, "UpdateUser", err)
		equal(t, "roles", got.Roles, []string{})
	}},
	{"unknown user status is invalid", func(t *testing.T, s model.Store) {
		_, err := s.CreateUser(ctx(t), model.User{Login: "ada", Status: "superuser"})
		isErr(t, "CreateUser", err, model.ErrInvalid)
		u := mustUser(t, s, "bob")
		_, err = s.UpdateUser(ctx(t), u.ID, model.UserPatch{Status: ptr(model.StatusInactive)})
		isErr(t, "UpdateUser to an agent-only status", err, model.ErrInvalid)
	}},
	{"users are listed by id", func(t *testing.T, s model.Store) {
		empty, err := s.ListUsers(ctx(t))
		noErr(t, "ListUsers on empty store", err)
		equal(t, "empty", len(empty), 0)
		c := mustUser(t, s, "carol")
		a := mustUser(t, s, "ada")
		b := mustUser(t, s, "bob")
		got, err := s.ListUsers(ctx(t))
		noErr(t, "ListUsers", err)
		equal(t, "users", got, []model.User{c, a, b})
	}},
	{"users are paged by id", func(t *testing.T, s model.Store) {
		empty, err := s.ListUsersAfter(ctx(t), 0, 10)
		noErr(t, "ListUsersAfter on empty store", err)
		equal(t, "empty", len(empty), 0)
		c := mustUser(t, s, "carol")
		a := mustUser(t, s, "ada")
		b := mustUser(t, s, "bob")
		for _, p := range []struct {
			name    string
			afterID int64
			limit   int
			want    []model.User
		}{
			{"the first page", 0, 2, []model.User{c, a}},
			{"the next page", a.ID, 2, []model.User{b}},
			{"past the last", b.ID, 2, []model.User{}},
			{"a limit over the count", 0, 10, []model.User{c, a, b}},
		} {
			got, err := s.ListUsersAfter(ctx(t), p.afterID, p.limit)
			noErr(t, "ListUsersAfter "+p.name, err)
			equal(t, p.name, got, p.want)
		}
	}},
}
