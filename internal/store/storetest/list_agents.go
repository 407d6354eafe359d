package storetest

import (
	"testing"

	"github.com/agentauthz/agentauthz/internal/model"
)

// listFixture: ada owns a1, a2, a4; bob owns b3, b5. Grants: b3 to user:ada
// (viewer), b5 to audience:public, a2 to audience:acme.
type listFixture struct {
	ada, bob           model.User
	a1, a2, b3, a4, b5 model.Agent
}

func newListFixture(t *testing.T, s model.Store) listFixture {
	t.Helper()
	var f listFixture
	f.ada = mustUser(t, s, "ada")
	f.bob = mustUser(t, s, "bob")
	f.a1 = mustAgent(t, s, f.ada.ID, "a1")
	f.a2 = mustAgent(t, s, f.ada.ID, "a2")
	f.b3 = mustAgent(t, s, f.bob.ID, "b3")
	f.a4 = mustAgent(t, s, f.ada.ID, "a4")
	f.b5 = mustAgent(t, s, f.bob.ID, "b5")
	mustGrant(t, s, f.b3.ID, "user:ada", "viewer")
	mustGrant(t, s, f.b5.ID, "audience:public", "viewer")
	mustGrant(t, s, f.a2.ID, "audience:acme", "operator")
	return f
}

var listAgentRules = []rule{{"list agents honours the query", func(t *testing.T, s model.Store) {
	f := newListFixture(t, s)
	ids := func(agents ...model.Agent) []int64 { return agentIDs(agents) }
	cases := []struct {
		name string
		q    model.AgentQuery
		want []int64
	}{
		{"an empty query selects nothing", model.AgentQuery{}, ids()},
		{"all returns every agent by id", model.AgentQuery{All: true}, ids(f.a1, f.a2, f.b3, f.a4, f.b5)},
		{"all ignores owner and principals", model.AgentQuery{All: true, OwnerID: f.bob.ID, OrPrincipals: []string{"x"}}, ids(f.a1, f.a2, f.b3, f.a4, f.b5)},
		{"owner keeps the owner's agents", model.AgentQuery{OwnerID: f.bob.ID}, ids(f.b3, f.b5)},
		{"principals keep agents granted to any of them", model.AgentQuery{OrPrincipals: []string{"audience:public", "audience:acme"}}, ids(f.a2, f.b5)},
		{"owner or principal is a union without duplicates", model.AgentQuery{OwnerID: f.ada.ID, OrPrincipals: []string{"user:ada", "audience:acme"}}, ids(f.a1, f.a2, f.b3, f.a4)},
		{"unknown principal matches nothing", model.AgentQuery{OrPrincipals: []string{"user:nobody"}}, ids()},
		{"after id skips up to and including it", model.AgentQuery{All: true, AfterID: f.b3.ID}, ids(f.a4, f.b5)},
		{"limit caps the page", model.AgentQuery{All: true, Limit: 2}, ids(f.a1, f.a2)},
		{"after id and limit page through a filter", model.AgentQuery{OwnerID: f.ada.ID, AfterID: f.a1.ID, Limit: 1}, ids(f.a2)},
		{"limit zero means no limit", model.AgentQuery{OwnerID: f.ada.ID, Limit: 0}, ids(f.a1, f.a2, f.a4)},
		{"page past the end is empty", model.AgentQuery{All: true, AfterID: f.b5.ID}, ids()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.ListAgents(ctx(t), c.q)
			noErr(t, "ListAgents", err)
			equal(t, "agent ids", agentIDs(got), c.want)
		})
	}
	t.Run("listed agents are complete records", func(t *testing.T) {
		got, err := s.ListAgents(ctx(t), model.AgentQuery{OwnerID: f.bob.ID})
		noErr(t, "ListAgents", err)
		equal(t, "agents", got, []model.Agent{f.b3, f.b5})
	})
}}}
