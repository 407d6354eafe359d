package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/agentauthz/agentauthz/internal/model"
)

// Importer is implemented by stores with a bulk-load path (seeding a fleet,
// a migration from another system).
type Importer interface {
	ImportAgents(ctx context.Context, agents []model.Agent) ([]model.Agent, error)
	ImportGrants(ctx context.Context, grants []model.Grant) error
}

// importer returns s's bulk-load path, failing t when it has none.
func importer(t *testing.T, s model.Store) Importer {
	t.Helper()
	im, ok := s.(Importer)
	if !ok {
		t.Fatalf("%T has no bulk-load path (ImportAgents, ImportGrants)", s)
	}
	return im
}

var importRules = []rule{
	{"imported agents round-trip in order across batches and list like created ones", func(t *testing.T, s model.Store) {
		ada := mustUser(t, s, "ada")
		first := mustAgent(t, s, ada.ID, "first")
		const n = 1203 // more than two batches
		in := make([]model.Agent, n)
		for i := range in {
			in[i] = model.Agent{Slug: fmt.Sprintf("bulk-%d", i), Name: fmt.Sprintf("Bulk %d", i), OwnerID: ada.ID}
		}
		in[7].Status, in[7].ToolPolicy = model.StatusInactive, &model.ToolPolicy{Mode: "allow", Tools: []string{"web_search"}}
		out, err := importer(t, s).ImportAgents(ctx(t), in)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != n {
			t.Fatalf("%d agents back, want %d", len(out), n)
		}
		for i, a := range out {
			if a.Slug != in[i].Slug || a.ID <= first.ID || (i > 0 && a.ID <= out[i-1].ID) {
				t.Fatalf("agent %d came back as %+v", i, a)
			}
		}
		got, err := s.GetAgent(ctx(t), out[7].ID)
		if err != nil || got.Status != model.StatusInactive || got.ToolPolicy == nil || got.ToolPolicy.Tools[0] != "web_search" || got.Status != out[7].Status {
			t.Fatalf("GetAgent of an imported agent: %+v %v", got, err)
		}
		if out[0].Status != model.StatusActive || out[0].CreatedAt.IsZero() || !out[0].UpdatedAt.Equal(out[0].CreatedAt) {
			t.Fatalf("defaults of an imported agent: %+v", out[0])
		}
		all, err := s.ListAgents(ctx(t), model.AgentQuery{All: true})
		if err != nil || len(all) != n+1 {
			t.Fatalf("ListAgents after the import: %d agents, %v", len(all), err)
		}
	}},
	{"imported grants are read like put ones", func(t *testing.T, s model.Store) {
		ada := mustUser(t, s, "ada")
		agents, err := importer(t, s).ImportAgents(ctx(t), []model.Agent{{Slug: "x", OwnerID: ada.ID}, {Slug: "y", OwnerID: ada.ID}})
		if err != nil {
			t.Fatal(err)
		}
		gs := []model.Grant{
			{AgentID: agents[0].ID, Principal: "audience:public", Role: "viewer"},
			{AgentID: agents[1].ID, Principal: "audience:public", Role: "operator"},
			{AgentID: agents[1].ID, Principal: "user:9", Role: "admin"},
		}
		if err := importer(t, s).ImportGrants(ctx(t), gs); err != nil {
			t.Fatal(err)
		}
		got, err := s.GrantsFor(ctx(t), []int64{agents[0].ID, agents[1].ID}, []string{"audience:public"})
		if err != nil || len(got) != 2 {
			t.Fatalf("GrantsFor: %+v %v", got, err)
		}
		listed, err := s.ListAgents(ctx(t), model.AgentQuery{OrPrincipals: []string{"user:9"}})
		if err != nil || len(listed) != 1 || listed[0].ID != agents[1].ID {
			t.Fatalf("ListAgents by an imported grant: %+v %v", listed, err)
		}
	}},
	{"a failed import writes nothing", func(t *testing.T, s model.Store) {
		ada := mustUser(t, s, "ada")
		taken := mustAgent(t, s, ada.ID, "taken")
		cases := []struct {
			name string
			run  func() error
			want error
		}{
			{"a taken slug in a later batch", func() error {
				in := make([]model.Agent, 600)
				for i := range in {
					in[i] = model.Agent{Slug: fmt.Sprintf("ok-%d", i), OwnerID: ada.ID}
				}
				in[599].Slug = "taken"
				_, err := importer(t, s).ImportAgents(ctx(t), in)
				return err
			}, model.ErrConflict},
			{"a missing owner", func() error {
				_, err := importer(t, s).ImportAgents(ctx(t), []model.Agent{{Slug: "fine", OwnerID: ada.ID}, {Slug: "orphan", OwnerID: 424242}})
				return err
			}, model.ErrNotFound},
			{"a grant on a missing agent", func() error {
				return importer(t, s).ImportGrants(ctx(t), []model.Grant{{AgentID: taken.ID, Principal: "user:1", Role: "viewer"}, {AgentID: 424242, Principal: "user:1", Role: "viewer"}})
			}, model.ErrNotFound},
			{"a grant twice", func() error {
				g := model.Grant{AgentID: taken.ID, Principal: "user:2", Role: "viewer"}
				return importer(t, s).ImportGrants(ctx(t), []model.Grant{g, g})
			}, model.ErrConflict},
		}
		for _, c := range cases {
			if err := c.run(); !errors.Is(err, c.want) {
				t.Fatalf("%s: %v, want %v", c.name, err, c.want)
			}
			all, err := s.ListAgents(ctx(t), model.AgentQuery{All: true})
			if err != nil || len(all) != 1 {
				t.Fatalf("%s: %d agents after a failed import, %v", c.name, len(all), err)
			}
			gs, err := s.ListGrants(ctx(t), taken.ID)
			if err != nil || len(gs) != 0 {
				t.Fatalf("%s: grants after a failed import %+v, %v", c.name, gs, err)
			}
		}
	}},
}
