package storetest

import (
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
)

var agentRules = []rule{
	{"created agent round-trips", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		in := model.Agent{
			Slug: "chat-bot", Name: "Chat bot", OwnerID: owner.ID, Status: model.StatusInactive,
			ToolPolicy: &model.ToolPolicy{Mode: "allow", Tools: []string{"web_search", "calc"}},
			CreatedAt:  at(0), UpdatedAt: at(time.Second),
		}
		got, err := s.CreateAgent(ctx(t), in)
		noErr(t, "CreateAgent", err)
		if got.ID <= 0 {
			t.Fatalf("CreateAgent assigned id %d, want > 0", got.ID)
		}
		want := in
		want.ID = got.ID
		equal(t, "created", got, want)
		byID, err := s.GetAgent(ctx(t), got.ID)
		noErr(t, "GetAgent", err)
		equal(t, "GetAgent", byID, want)
		bySlug, err := s.GetAgentBySlug(ctx(t), "chat-bot")
		noErr(t, "GetAgentBySlug", err)
		equal(t, "GetAgentBySlug", bySlug, want)
	}},
	{"new agent defaults to active, no tool policy, updated when created", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		equal(t, "status", a.Status, model.StatusActive)
		if a.ToolPolicy != nil {
			t.Errorf("ToolPolicy = %+v, want nil", a.ToolPolicy)
		}
		if a.CreatedAt.IsZero() || !a.UpdatedAt.Equal(a.CreatedAt) {
			t.Errorf("CreatedAt %v, UpdatedAt %v: want both now and equal", a.CreatedAt, a.UpdatedAt)
		}
	}},
	{"duplicate slug is a conflict", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		mustAgent(t, s, owner.ID, "bot")
		_, err := s.CreateAgent(ctx(t), model.Agent{Slug: "bot", OwnerID: owner.ID})
		isErr(t, "second CreateAgent", err, model.ErrConflict)
	}},
	{"agent of a missing owner is not found", func(t *testing.T, s model.Store) {
		_, err := s.CreateAgent(ctx(t), model.Agent{Slug: "bot", OwnerID: 4242})
		isErr(t, "CreateAgent", err, model.ErrNotFound)
	}},
	{"missing agent is not found", func(t *testing.T, s model.Store) {
		_, err := s.GetAgent(ctx(t), 4242)
		isErr(t, "GetAgent", err, model.ErrNotFound)
		_, err = s.GetAgentBySlug(ctx(t), "nope")
		isErr(t, "GetAgentBySlug", err, model.ErrNotFound)
		_, err = s.UpdateAgent(ctx(t), 4242, model.AgentPatch{Name: ptr("x")})
		isErr(t, "UpdateAgent", err, model.ErrNotFound)
		_, err = s.DeleteAgent(ctx(t), 4242)
		isErr(t, "DeleteAgent", err, model.ErrNotFound)
	}},
	{"update agent changes only patched fields and bumps updated_at", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a, err := s.CreateAgent(ctx(t), model.Agent{Slug: "bot", Name: "Bot", OwnerID: owner.ID, CreatedAt: at(-time.Hour)})
		noErr(t, "CreateAgent", err)
		policy := &model.ToolPolicy{Mode: "deny", Tools: []string{"shell"}}
		got, err := s.UpdateAgent(ctx(t), a.ID, model.AgentPatch{Status: ptr(model.StatusInactive), ToolPolicy: policy})
		noErr(t, "UpdateAgent", err)
		if !got.UpdatedAt.After(a.UpdatedAt) {
			t.Errorf("UpdatedAt %v not after %v", got.UpdatedAt, a.UpdatedAt)
		}
		want := a
		want.Status, want.ToolPolicy, want.UpdatedAt = model.StatusInactive, policy, got.UpdatedAt
		equal(t, "updated", got, want)
		stored, err := s.GetAgent(ctx(t), a.ID)
		noErr(t, "GetAgent", err)
		equal(t, "stored", stored, want)
	}},
	{"clearing the tool policy allows every tool", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a, err := s.CreateAgent(ctx(t), model.Agent{Slug: "bot", OwnerID: owner.ID, ToolPolicy: &model.ToolPolicy{Mode: "allow", Tools: []string{}}})
		noErr(t, "CreateAgent", err)
		equal(t, "created policy", a.ToolPolicy, &model.ToolPolicy{Mode: "allow", Tools: []string{}})
		got, err := s.UpdateAgent(ctx(t), a.ID, model.AgentPatch{Name: ptr("renamed"), ClearToolPolicy: true})
		noErr(t, "UpdateAgent", err)
		if got.ToolPolicy != nil || got.Name != "renamed" {
			t.Errorf("after clear: name %q policy %+v, want renamed and nil", got.Name, got.ToolPolicy)
		}
	}},
	{"tool policy without tools stores an empty list", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a, err := s.CreateAgent(ctx(t), model.Agent{Slug: "bot", OwnerID: owner.ID, ToolPolicy: &model.ToolPolicy{Mode: "allow"}})
		noErr(t, "CreateAgent", err)
		want := &model.ToolPolicy{Mode: "allow", Tools: []string{}}
		equal(t, "created policy", a.ToolPolicy, want)
		got, err := s.GetAgent(ctx(t), a.ID)
		noErr(t, "GetAgent", err)
		equal(t, "stored policy", got.ToolPolicy, want)
	}},
	{"unknown agent status is invalid", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		_, err := s.CreateAgent(ctx(t), model.Agent{Slug: "bot", OwnerID: owner.ID, Status: "paused"})
		isErr(t, "CreateAgent", err, model.ErrInvalid)
		a := mustAgent(t, s, owner.ID, "bot2")
		_, err = s.UpdateAgent(ctx(t), a.ID, model.AgentPatch{Status: ptr(model.StatusDisabled)})
		isErr(t, "UpdateAgent to a user-only status", err, model.ErrInvalid)
	}},
	{"delete agent removes grants and tokens", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		doomed := mustAgent(t, s, owner.ID, "doomed")
		kept := mustAgent(t, s, owner.ID, "kept")
		mustToken(t, s, doomed.ID, "doomed-token")
		keptTok := mustToken(t, s, kept.ID, "kept-token")
		mustGrant(t, s, doomed.ID, "user:9", "viewer")
		keptGrant := mustGrant(t, s, kept.ID, "user:9", "viewer")

		_, err := s.DeleteAgent(ctx(t), doomed.ID)
		noErr(t, "DeleteAgent", err)

		_, err = s.GetAgent(ctx(t), doomed.ID)
		isErr(t, "GetAgent after delete", err, model.ErrNotFound)
		_, err = s.ResolveTokenHash(ctx(t), hash("doomed-token"))
		isErr(t, "ResolveTokenHash of deleted agent's token", err, model.ErrNotFound)
		toks, err := s.ListTokens(ctx(t), doomed.ID)
		noErr(t, "ListTokens", err)
		equal(t, "tokens of deleted agent", len(toks), 0)
		grants, err := s.ListGrants(ctx(t), doomed.ID)
		noErr(t, "ListGrants", err)
		equal(t, "grants of deleted agent", len(grants), 0)
		_, err = s.DeleteAgent(ctx(t), doomed.ID)
		isErr(t, "second DeleteAgent", err, model.ErrNotFound)

		toks, err = s.ListTokens(ctx(t), kept.ID)
		noErr(t, "ListTokens of other agent", err)
		equal(t, "other agent's tokens", toks, []model.Token{keptTok})
		grants, err = s.GrantsFor(ctx(t), []int64{doomed.ID, kept.ID}, []string{"user:9"})
		noErr(t, "GrantsFor", err)
		equal(t, "remaining grants", grants, []model.Grant{keptGrant})
	}},
	{"deleted agent's slug can be reused with a new id", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		first := mustAgent(t, s, owner.ID, "bot")
		_, err := s.DeleteAgent(ctx(t), first.ID)
		noErr(t, "DeleteAgent", err)
		second := mustAgent(t, s, owner.ID, "bot")
		if second.ID == first.ID {
			t.Errorf("new agent reused id %d of a deleted agent", first.ID)
		}
	}},
}
