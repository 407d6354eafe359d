package authz_test

import (
	"context"
	"errors"
	"testing"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// While the engine awaits its first bundle (a bundle server's), nothing that
// reads the bundle answers from an empty one: role checks, listings and
// searches are 503 (ErrUnavailable) like every decision, never a 400
// "unknown role" or an empty answer a PEP could cache.
func TestServiceAwaitingItsBundleAnswersUnavailable(t *testing.T) {
	ctx := context.Background()
	eng, err := policy.New(ctx, policy.Options{Await: true})
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, "sqlite")
	owner, err := st.CreateUser(ctx, model.User{Login: "chubes", Roles: []string{"editor"}, Status: model.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateAgent(ctx, model.Agent{Slug: "bot", Name: "bot", OwnerID: owner.ID, Status: model.StatusActive}); err != nil {
		t.Fatal(err)
	}
	svc := authz.New(st, eng, nil, authz.Config{})
	op := principal.Operator()
	calls := map[string]func() error{
		"create a user with roles": func() error {
			_, err := svc.CreateUser(ctx, op, authz.CreateUserRequest{Login: "sam", Roles: []string{"subscriber"}})
			return err
		},
		"grant a role": func() error {
			_, _, err := svc.PutGrant(ctx, op, "bot", "user:chubes", "viewer")
			return err
		},
		"list accessible agents with a minimum role": func() error {
			_, _, err := svc.ListAccessible(ctx, op, "viewer", authz.Page{})
			return err
		},
		"search actions": func() error {
			_, err := svc.SearchActions(ctx, authz.Subject{Type: authz.SubjectUser, ID: "chubes"}, "bot", authz.SearchQuery{})
			return err
		},
		"authorize": func() error {
			_, err := svc.Authorize(ctx, op, authz.AuthorizeRequest{Agent: "bot", Action: "chat"})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, authz.ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable while no bundle is active", err)
			}
		})
	}
}
