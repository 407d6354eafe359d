package authz_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// TestSubjectPrincipal checks that an AuthZEN subject resolves to the
// principal a credential would, and that a token named by id must be live
// by the very rules a bearer token must meet.
func TestSubjectPrincipal(t *testing.T) {
	ctx := context.Background()
	s := newScene(t)
	mintTok := func(p *principal.Principal) authz.CreatedToken {
		t.Helper()
		ct, err := s.mint(t, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	live := mintTok(s.owner)
	parent := mintTok(s.owner)
	parentRes, err := s.st.ResolveTokenID(ctx, parent.Token.ID)
	if err != nil {
		t.Fatal(err)
	}
	child := mintTok(principal.ForToken(&parentRes.Token, &parentRes.Agent, parentRes.Owner))
	if _, err := s.svc.RevokeToken(ctx, s.op, "chubes-bot", parent.Token.ID); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	expired, err := s.st.CreateToken(ctx, model.Token{AgentID: s.agent.ID, Hash: "expired-hash", Prefix: "x", ExpiresAt: &past})
	if err != nil {
		t.Fatal(err)
	}
	tok := func(id int64) authz.Subject {
		return authz.Subject{Type: authz.SubjectAgentToken, ID: strconv.FormatInt(id, 10)}
	}

	cases := []struct {
		name string
		sub  authz.Subject
		ok   bool
		id   string // the principal's ID when ok
	}{
		{"user by login", authz.Subject{Type: "user", ID: "chubes"}, true, s.owner.ID},
		{"user by id", authz.Subject{Type: "user", ID: strconv.FormatInt(s.owner.User.ID, 10)}, true, s.owner.ID},
		{"unknown login", authz.Subject{Type: "user", ID: "ghost"}, false, ""},
		{"unknown user id", authz.Subject{Type: "user", ID: "987654"}, false, ""},
		{"audience by name", authz.Subject{Type: "audience", ID: "acme"}, true, "audience:acme"},
		{"audience by ref", authz.Subject{Type: "audience", ID: "audience:acme"}, true, "audience:acme"},
		{"public is the anonymous caller", authz.Subject{Type: "audience", ID: "public"}, true, principal.PublicAudience},
		{"live token", tok(live.Token.ID), true, principal.TokenID(live.Token.ID)},
		{"revoked token", tok(parent.Token.ID), false, ""},
		{"token whose minter was revoked", tok(child.Token.ID), false, ""},
		{"expired token", tok(expired.ID), false, ""},
		{"unknown token", tok(live.Token.ID + 1000), false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, ok, err := s.svc.SubjectPrincipal(ctx, c.sub)
			if err != nil || ok != c.ok {
				t.Fatalf("ok=%v err=%v, want ok=%v", ok, err, c.ok)
			}
			if ok && p.ID != c.id {
				t.Fatalf("principal %s, want %s", p.ID, c.id)
			}
		})
	}

	t.Run("inactive agent, then disabled owner", func(t *testing.T) {
		inactive, active := model.StatusInactive, model.StatusActive
		if _, err := s.svc.UpdateAgent(ctx, s.op, "chubes-bot", authz.AgentUpdate{Status: &inactive}); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.svc.SubjectPrincipal(ctx, tok(live.Token.ID)); ok || err != nil {
			t.Fatalf("token of an inactive agent: ok=%v err=%v", ok, err)
		}
		if _, err := s.svc.UpdateAgent(ctx, s.op, "chubes-bot", authz.AgentUpdate{Status: &active}); err != nil {
			t.Fatal(err)
		}
		disabled := model.StatusDisabled
		if _, err := s.svc.UpdateUser(ctx, s.op, "chubes", authz.UserUpdate{Status: &disabled}); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.svc.SubjectPrincipal(ctx, tok(live.Token.ID)); ok || err != nil {
			t.Fatalf("token of a disabled owner: ok=%v err=%v", ok, err)
		}
		if _, ok, err := s.svc.SubjectPrincipal(ctx, authz.Subject{Type: "user", ID: "chubes"}); ok || err != nil {
			t.Fatalf("disabled user: ok=%v err=%v", ok, err)
		}
	})

	for _, sub := range []authz.Subject{
		{Type: "robot", ID: "r2"}, {Type: "user", ID: "not a login"}, {Type: "audience", ID: "user:3"},
		{Type: "agent_token", ID: "datamachine_chubes-bot_00"}, {Type: "agent_token", ID: "007"}, {Type: "agent_token", ID: "-1"},
	} {
		t.Run("invalid "+sub.Type+" "+sub.ID, func(t *testing.T) {
			_, _, err := s.svc.SubjectPrincipal(ctx, sub)
			var ve *authz.ValidationError
			if !errors.As(err, &ve) || ve.Code != "invalid_subject" {
				t.Fatalf("err %v, want invalid_subject", err)
			}
		})
	}
}

// TestAuthorizeSubjectIsAuthorize checks that a subject's decision is the
// decision its credential gets from Authorize.
func TestAuthorizeSubjectIsAuthorize(t *testing.T) {
	ctx := context.Background()
	s := newScene(t)
	for _, c := range []struct {
		p    *principal.Principal
		sub  authz.Subject
		tool string
	}{
		{s.owner, authz.Subject{Type: "user", ID: "chubes"}, "web_search"},
		{s.owner, authz.Subject{Type: "user", ID: "chubes"}, "shell"},
		{s.operator, authz.Subject{Type: "user", ID: "sam"}, "web_search"},
		{s.viewer, authz.Subject{Type: "user", ID: "vic"}, "web_search"},
		{s.outsider, authz.Subject{Type: "user", ID: "olga"}, "web_search"},
		{principal.Anonymous(), authz.Subject{Type: "audience", ID: "public"}, "web_search"},
	} {
		tool := c.tool
		req := authz.AuthorizeRequest{Action: "use_tools", Tool: &tool, Agent: "chubes-bot"}
		want, err := s.svc.Authorize(ctx, c.p, req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.svc.AuthorizeSubject(ctx, c.sub, req)
		if err != nil {
			t.Fatal(err)
		}
		if got.Allow != want.Allow || len(got.DeniedBy) != len(want.DeniedBy) || got.DecisionID == "" {
			t.Fatalf("%s %s: subject %+v, credential %+v", c.sub.ID, tool, got, want)
		}
	}
	res, err := s.svc.AuthorizeSubject(ctx, authz.Subject{Type: "user", ID: "chubes"}, authz.AuthorizeRequest{Action: "chat", Agent: "nope"})
	if err != nil || res.Allow || len(res.DeniedBy) != 1 || res.DeniedBy[0] != authz.DeniedByResource {
		t.Fatalf("unknown agent: %+v %v", res, err)
	}
}
