package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
)

var timeRules = []rule{
	{"timestamps round-trip in UTC to the microsecond", func(t *testing.T, s model.Store) {
		zone := time.FixedZone("IST", 5*3600+1800)
		in := time.Date(2031, 7, 4, 23, 59, 58, 123456789, zone)
		want := time.Date(2031, 7, 4, 18, 29, 58, 123456000, time.UTC)
		u, err := s.CreateUser(ctx(t), model.User{Login: "ada", CreatedAt: in})
		noErr(t, "CreateUser", err)
		a, err := s.CreateAgent(ctx(t), model.Agent{Slug: "bot", OwnerID: u.ID, CreatedAt: in, UpdatedAt: in})
		noErr(t, "CreateAgent", err)
		tok, err := s.CreateToken(ctx(t), model.Token{AgentID: a.ID, Hash: hash("t"), CreatedAt: in, ExpiresAt: &in, LastUsedAt: &in, RevokedAt: &in})
		noErr(t, "CreateToken", err)
		g, _, err := s.PutGrant(ctx(t), model.Grant{AgentID: a.ID, Principal: "user:9", Role: "viewer", GrantedAt: in})
		noErr(t, "PutGrant", err)
		r, err := s.ResolveTokenHash(ctx(t), hash("t"))
		noErr(t, "ResolveTokenHash", err)
		grants, err := s.ListGrants(ctx(t), a.ID)
		noErr(t, "ListGrants", err)
		for name, got := range map[string]time.Time{
			"created user":            u.CreatedAt,
			"resolved owner":          r.Owner.CreatedAt,
			"created agent":           a.CreatedAt,
			"agent updated_at":        a.UpdatedAt,
			"resolved agent":          r.Agent.CreatedAt,
			"created token":           tok.CreatedAt,
			"resolved token":          r.Token.CreatedAt,
			"resolved expires_at":     *r.Token.ExpiresAt,
			"resolved last_used_at":   *r.Token.LastUsedAt,
			"resolved revoked_at":     *r.Token.RevokedAt,
			"put grant":               g.GrantedAt,
			"listed grant granted_at": grants[0].GrantedAt,
		} {
			if !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("%s: got %v, want %v in UTC", name, got, want)
			}
		}
	}},
	{"zero timestamps default to now", func(t *testing.T, s model.Store) {
		before := time.Now().Add(-time.Second)
		u := mustUser(t, s, "ada")
		a := mustAgent(t, s, u.ID, "bot")
		tok := mustToken(t, s, a.ID, "t")
		g := mustGrant(t, s, a.ID, "user:9", "viewer")
		after := time.Now().Add(time.Second)
		for name, got := range map[string]time.Time{
			"user created_at": u.CreatedAt, "agent created_at": a.CreatedAt, "agent updated_at": a.UpdatedAt,
			"token created_at": tok.CreatedAt, "grant granted_at": g.GrantedAt,
		} {
			if got.Before(before) || got.After(after) || got.Location() != time.UTC {
				t.Errorf("%s = %v, want now in UTC", name, got)
			}
		}
		if tok.ExpiresAt != nil || tok.LastUsedAt != nil || tok.RevokedAt != nil {
			t.Errorf("optional token times set: %+v", tok)
		}
	}},
	{"a cancelled context is unavailable", func(t *testing.T, s model.Store) {
		c, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.ListUsers(c)
		isErr(t, "ListUsers", err, model.ErrUnavailable)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ListUsers error %v does not wrap context.Canceled", err)
		}
		isErr(t, "Ping", s.Ping(c), model.ErrUnavailable)
	}},
}
