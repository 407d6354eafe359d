package authz_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/credential"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// scene is the seed's cast: an editor owning a bot, a subscriber holding
// an operator grant, another holding a viewer grant, a site administrator.
type scene struct {
	svc                     *authz.Service
	st                      model.Store
	op                      *principal.Principal
	owner, operator, viewer *principal.Principal
	admin, outsider         *principal.Principal
	agent                   model.Agent
}

func newScene(t *testing.T) *scene {
	t.Helper()
	ctx := context.Background()
	svc, st, _ := newService(t, "")
	s := &scene{svc: svc, st: st, op: principal.Operator()}
	user := func(login, role string) *principal.Principal {
		u, err := svc.CreateUser(ctx, s.op, authz.CreateUserRequest{Login: login, Roles: []string{role}})
		if err != nil {
			t.Fatalf("create user %s: %v", login, err)
		}
		return principal.ForUser(&u, nil)
	}
	s.owner, s.operator, s.viewer = user("chubes", "editor"), user("sam", "subscriber"), user("vic", "subscriber")
	s.admin, s.outsider = user("root", "administrator"), user("olga", "editor")
	var err error
	s.agent, err = svc.CreateAgent(ctx, s.owner, authz.CreateAgentRequest{Slug: "chubes-bot", ToolPolicy: &model.ToolPolicy{Mode: "allow", Tools: []string{"web_search"}}})
	if err != nil {
		t.Fatalf("owner creates agent: %v", err)
	}
	for who, role := range map[string]string{"user:sam": "operator", "user:vic": "viewer"} {
		if _, _, err := svc.PutGrant(ctx, s.owner, "chubes-bot", who, role); err != nil {
			t.Fatalf("grant %s: %v", who, err)
		}
	}
	return s
}

func (s *scene) mint(t *testing.T, p *principal.Principal, caps *[]string) (authz.CreatedToken, error) {
	t.Helper()
	return s.svc.CreateToken(context.Background(), p, "chubes-bot", authz.CreateTokenRequest{Label: "t", Capabilities: caps})
}

func denied(err error) bool {
	var d *authz.DeniedError
	return errors.As(err, &d)
}

func TestGrantsMatter(t *testing.T) {
	ctx := context.Background()
	s := newScene(t)
	created, err := s.mint(t, s.owner, nil)
	if err != nil {
		t.Fatalf("owner mints a token: %v", err)
	}
	cases := []struct {
		name string
		p    *principal.Principal
		do   func(p *principal.Principal) error
		ok   bool
	}{
		{"operator grant lists tokens", s.operator, func(p *principal.Principal) error { _, err := s.svc.ListTokens(ctx, p, "chubes-bot"); return err }, true},
		{"operator grant cannot create tokens", s.operator, func(p *principal.Principal) error { _, err := s.mint(t, p, &[]string{"read"}); return err }, false},
		{"operator grant cannot revoke tokens", s.operator, func(p *principal.Principal) error {
			_, err := s.svc.RevokeToken(ctx, p, "chubes-bot", created.Token.ID)
			return err
		}, false},
		{"viewer grant shows the agent", s.viewer, func(p *principal.Principal) error { _, err := s.svc.GetAgent(ctx, p, "chubes-bot"); return err }, true},
		{"viewer grant cannot list tokens", s.viewer, func(p *principal.Principal) error { _, err := s.svc.ListTokens(ctx, p, "chubes-bot"); return err }, false},
		{"no grant cannot see the agent", s.outsider, func(p *principal.Principal) error { _, err := s.svc.GetAgent(ctx, p, "chubes-bot"); return err }, false},
		{"site administrator lists tokens of any agent", s.admin, func(p *principal.Principal) error { _, err := s.svc.ListTokens(ctx, p, "chubes-bot"); return err }, true},
		{"no grant cannot probe the owner's implicit access", s.outsider, func(p *principal.Principal) error {
			return s.svc.DeleteGrant(ctx, p, "chubes-bot", "user:chubes")
		}, false},
		{"owner grants access", s.owner, func(p *principal.Principal) error {
			_, _, err := s.svc.PutGrant(ctx, p, "chubes-bot", "audience:acme", "viewer")
			return err
		}, true},
		{"operator cannot grant access", s.operator, func(p *principal.Principal) error {
			_, _, err := s.svc.PutGrant(ctx, p, "chubes-bot", "audience:acme", "admin")
			return err
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.do(c.p)
			if c.ok && err != nil {
				t.Fatalf("want allowed, got %v", err)
			}
			if !c.ok && !denied(err) {
				t.Fatalf("want a policy deny, got %v", err)
			}
		})
	}
	acc, err := s.svc.CanAccess(ctx, s.viewer, "chubes-bot", "")
	if err != nil || !acc.Allowed || acc.Role != "viewer" {
		t.Fatalf("viewer checks access: %+v %v", acc, err)
	}
}

func TestMintCeilings(t *testing.T) {
	ctx := context.Background()
	s := newScene(t)
	chat, err := s.mint(t, s.owner, &[]string{"datamachine_chat"})
	if err != nil {
		t.Fatal(err)
	}
	creds := credential.New(s.st, credential.Options{CacheTTL: time.Minute, TouchInterval: time.Hour})
	t.Cleanup(func() { creds.Close(ctx) })
	chatToken, err := creds.LookupRaw(ctx, chat.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.svc.PutGrant(ctx, s.owner, "chubes-bot", "user:olga", "admin"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		p    *principal.Principal
		caps *[]string
		ok   bool
	}{
		{"restricted token cannot mint a wider token", chatToken, &[]string{"datamachine_chat", "datamachine_use_tools"}, false},
		{"restricted token cannot mint an owner-wide token", chatToken, nil, false},
		{"owner mints an owner-wide token", s.owner, nil, true},
		{"owner mints a narrower token", s.owner, &[]string{"datamachine_chat"}, true},
		{"admin grantee mints within their own capabilities", s.outsider, &[]string{"datamachine_chat"}, true},
		{"nobody mints a capability they lack", s.outsider, &[]string{"manage_options"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, _ := s.svc.ListTokens(ctx, s.op, "chubes-bot")
			_, err := s.mint(t, c.p, c.caps)
			after, _ := s.svc.ListTokens(ctx, s.op, "chubes-bot")
			if c.ok {
				if err != nil || len(after) != len(before)+1 {
					t.Fatalf("want a new token, got %v (%d → %d tokens)", err, len(before), len(after))
				}
				return
			}
			var d *authz.DeniedError
			if !errors.As(err, &d) || !contains(d.Decision.DeniedBy, "mint_ceiling") && !contains(d.Decision.DeniedBy, "capability") {
				t.Fatalf("want a mint_ceiling deny, got %v", err)
			}
			if len(after) != len(before) {
				t.Fatalf("a refused mint wrote a token (%d → %d)", len(before), len(after))
			}
		})
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	ctx := context.Background()
	s := newScene(t)
	first, err := s.mint(t, s.owner, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.svc.CreateAgent(ctx, s.op, authz.CreateAgentRequest{Slug: "other", Owner: "olga"})
	if err != nil {
		t.Fatal(err)
	}
	otherTok, err := s.svc.CreateToken(ctx, s.op, other.Slug, authz.CreateTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	zero, neg := int64(0), int64(-5)
	long := string(make([]byte, 201))
	var (
		validation *authz.ValidationError
		notFound   *authz.NotFoundError
		conflict   *authz.ConflictError
	)
	cases := []struct {
		name string
		do   func() error
		want any
	}{
		{"expires_in zero is rejected", func() error {
			_, err := s.svc.CreateToken(ctx, s.op, "chubes-bot", authz.CreateTokenRequest{ExpiresIn: &zero})
			return err
		}, &validation},
		{"expires_in negative is rejected", func() error {
			_, err := s.svc.CreateToken(ctx, s.op, "chubes-bot", authz.CreateTokenRequest{ExpiresIn: &neg})
			return err
		}, &validation},
		{"label over 200 characters is rejected", func() error {
			_, err := s.svc.CreateToken(ctx, s.op, "chubes-bot", authz.CreateTokenRequest{Label: long})
			return err
		}, &validation},
		{"empty capability name is rejected", func() error {
			_, err := s.svc.CreateToken(ctx, s.op, "chubes-bot", authz.CreateTokenRequest{Capabilities: &[]string{""}})
			return err
		}, &validation},
		{"unknown agent is not found", func() error {
			_, err := s.svc.CreateToken(ctx, s.op, "nope", authz.CreateTokenRequest{})
			return err
		}, &notFound},
		{"token id of another agent is not found", func() error {
			_, err := s.svc.RevokeToken(ctx, s.op, "chubes-bot", otherTok.Token.ID)
			return err
		}, &notFound},
		{"duplicate slug is a conflict", func() error {
			_, err := s.svc.CreateAgent(ctx, s.op, authz.CreateAgentRequest{Slug: "chubes-bot", Owner: "chubes"})
			return err
		}, &conflict},
		{"slug outside [a-z0-9_-] is rejected", func() error {
			_, err := s.svc.CreateAgent(ctx, s.op, authz.CreateAgentRequest{Slug: "Chubes Bot", Owner: "chubes"})
			return err
		}, &validation},
		{"all-digit slug is rejected: it would read as an id", func() error {
			_, err := s.svc.CreateAgent(ctx, s.op, authz.CreateAgentRequest{Slug: "5", Owner: "chubes"})
			return err
		}, &validation},
		{"all-digit login is rejected: it would read as an id", func() error {
			_, err := s.svc.CreateUser(ctx, s.op, authz.CreateUserRequest{Login: "7", Roles: []string{"editor"}})
			return err
		}, &validation},
		{"unknown grant role is rejected", func() error {
			_, _, err := s.svc.PutGrant(ctx, s.op, "chubes-bot", "user:sam", "owner")
			return err
		}, &validation},
		{"malformed principal is rejected", func() error {
			_, _, err := s.svc.PutGrant(ctx, s.op, "chubes-bot", "robot:x", "viewer")
			return err
		}, &validation},
		{"empty user principal is rejected", func() error {
			_, _, err := s.svc.PutGrant(ctx, s.op, "chubes-bot", "user:", "viewer")
			return err
		}, &validation},
		{"revoking the owner's implicit access is a conflict", func() error {
			return s.svc.DeleteGrant(ctx, s.op, "chubes-bot", "user:chubes")
		}, &conflict},
		{"unknown user role is rejected", func() error {
			_, err := s.svc.CreateUser(ctx, s.op, authz.CreateUserRequest{Login: "x", Roles: []string{"owner"}})
			return err
		}, &validation},
		{"minimum role owner is rejected", func() error {
			_, err := s.svc.CanAccess(ctx, s.op, "chubes-bot", "owner")
			return err
		}, &validation},
	}
	snapshot := func() (int, int, int) {
		toks, _ := s.svc.ListTokens(ctx, s.op, "chubes-bot")
		gs, _ := s.svc.ListGrants(ctx, s.op, "chubes-bot")
		us, _ := s.svc.ListUsers(ctx, s.op)
		return len(toks), len(gs), len(us)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t1, g1, u1 := snapshot()
			err := c.do()
			if err == nil || !errors.As(err, c.want) {
				t.Fatalf("got %T %v, want %T", err, err, c.want)
			}
			if t2, g2, u2 := snapshot(); t1 != t2 || g1 != g2 || u1 != u2 {
				t.Fatalf("bad input changed the store: tokens %d→%d grants %d→%d users %d→%d", t1, t2, g1, g2, u1, u2)
			}
		})
	}
	// Creating a token for an inactive agent is refused and writes nothing.
	inactive := model.StatusInactive
	if _, err := s.svc.UpdateAgent(ctx, s.op, "chubes-bot", authz.AgentUpdate{Status: &inactive}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.CreateToken(ctx, s.op, "chubes-bot", authz.CreateTokenRequest{}); !errors.As(err, &conflict) || conflict.Code != "agent_not_active" {
		t.Fatalf("token for an inactive agent: %v", err)
	}
	_ = first
}

func TestConcurrentTokenCreationsAllWork(t *testing.T) {
	ctx := context.Background()
	s := newScene(t)
	const n = 64
	raws := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ct, err := s.mint(t, s.owner, nil)
			raws[i], errs[i] = ct.Raw, err
		}(i)
	}
	wg.Wait()
	creds := credential.New(s.st, credential.Options{CacheTTL: time.Minute, TouchInterval: time.Hour})
	t.Cleanup(func() { creds.Close(ctx) })
	seen := map[string]bool{}
	ids := map[int64]bool{}
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("creation %d: %v", i, errs[i])
		}
		if seen[raws[i]] {
			t.Fatalf("creation %d returned a duplicate token", i)
		}
		seen[raws[i]] = true
		p, err := creds.LookupRaw(ctx, raws[i])
		if err != nil {
			t.Fatalf("token %d does not resolve: %v", i, err)
		}
		ids[p.Token.ID] = true
	}
	if len(ids) != n {
		t.Fatalf("%d tokens resolved to %d distinct ids", n, len(ids))
	}
}

// brokenEngine fails every evaluation, as an engine without a usable policy.
type brokenEngine struct{ act policy.Activation }

func (brokenEngine) Decide(context.Context, ast.Value) (policy.Decision, error) {
	return policy.Decision{Allow: true}, errors.New("evaluation failed")
}
func (b brokenEngine) Activation() policy.Activation { return b.act }

func TestFailsClosed(t *testing.T) {
	ctx := context.Background()
	s := newScene(t)
	t.Run("engine failure is unavailable, never allow", func(t *testing.T) {
		svc := authz.New(s.st, brokenEngine{act: policy.Activation{AgentRoles: map[string]int{"viewer": 1}}}, nil, authz.Config{})
		_, err := svc.ListTokens(ctx, s.owner, "chubes-bot")
		if !errors.Is(err, authz.ErrUnavailable) {
			t.Fatalf("got %v, want ErrUnavailable", err)
		}
		acc, err := svc.CanAccess(ctx, s.owner, "chubes-bot", "")
		if !errors.Is(err, authz.ErrUnavailable) || acc.Allowed {
			t.Fatalf("can-access with a broken engine: %+v %v", acc, err)
		}
	})
	t.Run("store failure is unavailable, never allow", func(t *testing.T) {
		if err := s.st.Close(); err != nil {
			t.Fatal(err)
		}
		_, err := s.svc.ListTokens(ctx, s.owner, "chubes-bot")
		if !errors.Is(err, authz.ErrUnavailable) {
			t.Fatalf("got %v, want ErrUnavailable", err)
		}
	})
}

// TestListAccessiblePagesAcrossChunks: paging through a fleet larger than a
// candidate chunk yields exactly the accessible agents, in id order, each
// once, for a caller with scope "related" and one with scope "all".
func TestListAccessiblePagesAcrossChunks(t *testing.T) {
	ctx := context.Background()
	s := newScene(t)
	olga := s.outsider.User
	want := map[string][]int64{}
	for i := 0; i < 150; i++ {
		a, err := s.st.CreateAgent(ctx, model.Agent{Slug: fmt.Sprintf("fleet-%03d", i), OwnerID: olga.ID, Status: model.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, _, err := s.st.PutGrant(ctx, model.Grant{AgentID: a.ID, Principal: "user:" + strconv.FormatInt(s.viewer.User.ID, 10), Role: "viewer"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	all, err := s.st.ListAgents(ctx, model.AgentQuery{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range all {
		want["operator"] = append(want["operator"], a.ID)
		if a.Slug == "chubes-bot" {
			want["vic"] = append(want["vic"], a.ID) // vic's viewer grant from the scene
		} else if n, _ := strconv.Atoi(strings.TrimPrefix(a.Slug, "fleet-")); n%3 == 0 {
			want["vic"] = append(want["vic"], a.ID)
		}
	}
	for name, p := range map[string]*principal.Principal{"operator": s.op, "vic": s.viewer} {
		t.Run(name, func(t *testing.T) {
			var got []int64
			page := authz.Page{Limit: 7}
			for pages := 0; ; pages++ {
				if pages > 100 {
					t.Fatal("paging does not end")
				}
				rows, next, err := s.svc.ListAccessible(ctx, p, "", page)
				if err != nil {
					t.Fatal(err)
				}
				if len(rows) > page.Limit {
					t.Fatalf("page of %d rows, limit %d", len(rows), page.Limit)
				}
				for _, r := range rows {
					got = append(got, r.Agent.ID)
				}
				if next == 0 {
					break
				}
				page.AfterID = next
			}
			if fmt.Sprint(got) != fmt.Sprint(want[name]) {
				t.Fatalf("paged listing = %v\nwant %v", got, want[name])
			}
		})
	}
}
