// Package storetest is the one conformance suite every model.Store must
// pass. Each rule is a named subtest that gets a fresh, migrated store.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
)

// OwnerRemover is implemented by stores under test that can delete a user
// row while leaving its agents behind (bypassing the foreign key), so the
// suite can check how a missing owner resolves. Through the Store interface
// and the schema's ON DELETE CASCADE an owner cannot go missing.
type OwnerRemover interface {
	RemoveOwnerRow(ctx context.Context, userID int64) error
}

// rule is one named conformance case.
type rule struct {
	name string
	run  func(t *testing.T, s model.Store)
}

// Run runs every rule against stores made by open, which must return a
// fresh, migrated, empty store for each call and close it when t ends.
func Run(t *testing.T, open func(t *testing.T) model.Store) {
	groups := []struct {
		name  string
		rules []rule
	}{
		{"users", userRules},
		{"agents", agentRules},
		{"list_agents", listAgentRules},
		{"tokens", tokenRules},
		{"concurrency", concurrencyRules},
		{"grants", grantRules},
		{"time", timeRules},
		{"import", importRules},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, r := range g.rules {
				t.Run(r.name, func(t *testing.T) {
					t.Parallel()
					r.run(t, open(t))
				})
			}
		})
	}
}

// ctx returns a context that ends with the test or after a minute.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// at returns a fixed UTC timestamp offset by d, with sub-second digits.
func at(d time.Duration) time.Time {
	return time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC).Add(d)
}

// hash returns a SHA-256 hex string derived from seed, like a token hash.
func hash(seed string) string {
	h := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(h[:])
}

func ptr[T any](v T) *T { return &v }

func mustUser(t *testing.T, s model.Store, login string) model.User {
	t.Helper()
	u, err := s.CreateUser(ctx(t), model.User{Login: login, Name: login, Roles: []string{"editor"}})
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", login, err)
	}
	return u
}

func mustAgent(t *testing.T, s model.Store, owner int64, slug string) model.Agent {
	t.Helper()
	a, err := s.CreateAgent(ctx(t), model.Agent{Slug: slug, Name: slug, OwnerID: owner})
	if err != nil {
		t.Fatalf("CreateAgent(%q): %v", slug, err)
	}
	return a
}

func mustToken(t *testing.T, s model.Store, agentID int64, seed string) model.Token {
	t.Helper()
	tok, err := s.CreateToken(ctx(t), model.Token{AgentID: agentID, Hash: hash(seed), Prefix: seed[:min(4, len(seed))], Label: seed})
	if err != nil {
		t.Fatalf("CreateToken(%q): %v", seed, err)
	}
	return tok
}

func mustChild(t *testing.T, s model.Store, agentID int64, seed string, parent int64) model.Token {
	t.Helper()
	tok, err := s.CreateToken(ctx(t), model.Token{AgentID: agentID, Hash: hash(seed), Prefix: seed[:min(4, len(seed))], Label: seed, ParentID: &parent})
	if err != nil {
		t.Fatalf("CreateToken(%q, parent %d): %v", seed, parent, err)
	}
	return tok
}

func mustGrant(t *testing.T, s model.Store, agentID int64, principal, role string) model.Grant {
	t.Helper()
	g, _, err := s.PutGrant(ctx(t), model.Grant{AgentID: agentID, Principal: principal, Role: role})
	if err != nil {
		t.Fatalf("PutGrant(%d, %q): %v", agentID, principal, err)
	}
	return g
}

// equal fails t unless got and want are deeply equal.
func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// isErr fails t unless err matches target.
func isErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

// noErr stops t on an unexpected error.
func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// ids lists the ids of agents.
func agentIDs(agents []model.Agent) []int64 {
	out := []int64{}
	for _, a := range agents {
		out = append(out, a.ID)
	}
	return out
}
