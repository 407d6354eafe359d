package storetest

import (
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
)

var grantRules = []rule{
	{"put grant creates, then replaces and reports created=false", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		first := model.Grant{AgentID: a.ID, Principal: "user:9", Role: "viewer", GrantedAt: at(0)}
		got, created, err := s.PutGrant(ctx(t), first)
		noErr(t, "first PutGrant", err)
		equal(t, "first created", created, true)
		equal(t, "first grant", got, first)
		second := model.Grant{AgentID: a.ID, Principal: "user:9", Role: "admin", GrantedAt: at(time.Hour)}
		got, created, err = s.PutGrant(ctx(t), second)
		noErr(t, "second PutGrant", err)
		equal(t, "second created", created, false)
		equal(t, "second grant", got, second)
		list, err := s.ListGrants(ctx(t), a.ID)
		noErr(t, "ListGrants", err)
		equal(t, "stored grants", list, []model.Grant{second})
	}},
	{"grant on a missing agent is not found", func(t *testing.T, s model.Store) {
		_, _, err := s.PutGrant(ctx(t), model.Grant{AgentID: 4242, Principal: "user:9", Role: "viewer"})
		isErr(t, "PutGrant", err, model.ErrNotFound)
	}},
	{"delete grant removes only that grant", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		mustGrant(t, s, a.ID, "user:9", "viewer")
		kept := mustGrant(t, s, a.ID, "audience:acme", "viewer")
		noErr(t, "DeleteGrant", s.DeleteGrant(ctx(t), a.ID, "user:9"))
		list, err := s.ListGrants(ctx(t), a.ID)
		noErr(t, "ListGrants", err)
		equal(t, "remaining", list, []model.Grant{kept})
	}},
	{"deleting a missing grant is not found", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		isErr(t, "DeleteGrant", s.DeleteGrant(ctx(t), a.ID, "user:9"), model.ErrNotFound)
	}},
	{"grants are listed by principal", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		other := mustAgent(t, s, owner.ID, "other")
		u := mustGrant(t, s, a.ID, "user:9", "viewer")
		p := mustGrant(t, s, a.ID, "audience:public", "viewer")
		mustGrant(t, s, other.ID, "audience:acme", "viewer")
		list, err := s.ListGrants(ctx(t), a.ID)
		noErr(t, "ListGrants", err)
		equal(t, "grants", list, []model.Grant{p, u})
	}},
	{"grants for filters by agents and principals", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "a")
		b := mustAgent(t, s, owner.ID, "b")
		c := mustAgent(t, s, owner.ID, "c")
		aUser := mustGrant(t, s, a.ID, "user:9", "viewer")
		aPublic := mustGrant(t, s, a.ID, "audience:public", "viewer")
		mustGrant(t, s, a.ID, "user:10", "admin")
		bUser := mustGrant(t, s, b.ID, "user:9", "operator")
		mustGrant(t, s, c.ID, "user:9", "admin")
		cases := []struct {
			name       string
			agents     []int64
			principals []string
			want       []model.Grant
		}{
			{"only listed agents and principals", []int64{a.ID, b.ID}, []string{"user:9", "audience:public"}, []model.Grant{aPublic, aUser, bUser}},
			{"repeated and unordered agent ids", []int64{b.ID, a.ID, b.ID}, []string{"user:9"}, []model.Grant{aUser, bUser}},
			{"unknown agent matches nothing", []int64{4242}, []string{"user:9"}, []model.Grant{}},
			{"unknown principal matches nothing", []int64{a.ID, b.ID, c.ID}, []string{"user:404"}, []model.Grant{}},
			{"no agents is empty", nil, []string{"user:9"}, []model.Grant{}},
			{"no principals is empty", []int64{a.ID}, []string{}, []model.Grant{}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.GrantsFor(ctx(t), tc.agents, tc.principals)
				noErr(t, "GrantsFor", err)
				equal(t, "grants", got, tc.want)
			})
		}
	}},
	{"grants for many agents crosses query batches", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "a")
		b := mustAgent(t, s, owner.ID, "b")
		ga := mustGrant(t, s, a.ID, "user:9", "viewer")
		gb := mustGrant(t, s, b.ID, "user:9", "viewer")
		ids := []int64{a.ID}
		for i := int64(0); i < 1200; i++ {
			ids = append(ids, 100000+i)
		}
		ids = append(ids, b.ID)
		got, err := s.GrantsFor(ctx(t), ids, []string{"user:9"})
		noErr(t, "GrantsFor", err)
		equal(t, "grants", got, []model.Grant{ga, gb})
	}},
}
