package authz_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// loggedScene is a store, a service whose decisions are recorded, an owner
// ("chubes", editor), an agent ("chubes-bot") that "vic" may view, and
// "olga" (editor), who has nothing to do with it.
type loggedScene struct {
	svc   *authz.Service
	st    model.Store
	eng   *policy.Engine
	log   *authz.RecordingLog
	owner model.User
}

func newLoggedScene(t *testing.T, st model.Store) *loggedScene {
	t.Helper()
	ctx := context.Background()
	eng, err := policy.New(ctx, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &loggedScene{st: st, eng: eng, log: &authz.RecordingLog{}}
	s.svc = authz.New(st, eng, nil, authz.Config{DecisionLog: s.log})
	op := principal.Operator()
	if s.owner, err = s.svc.CreateUser(ctx, op, authz.CreateUserRequest{Login: "chubes", Roles: []string{"editor"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.CreateUser(ctx, op, authz.CreateUserRequest{Login: "vic", Roles: []string{"subscriber"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.CreateUser(ctx, op, authz.CreateUserRequest{Login: "olga", Roles: []string{"editor"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.CreateAgent(ctx, principal.ForUser(&s.owner, nil), authz.CreateAgentRequest{Slug: "chubes-bot"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.svc.PutGrant(ctx, op, "chubes-bot", "user:vic", "viewer"); err != nil {
		t.Fatal(err)
	}
	return s
}

// since returns the records logged after the first n.
func (s *loggedScene) since(n int) []policy.DecisionRecord { return s.log.Records()[n:] }

// TestDecisionLogAuthZENDenialsBeforePolicy: an AuthZEN evaluation of a
// subject or an agent that does not exist is answered without the policy,
// and still logged, once, under the answer's decision id, saying that no
// policy evaluated it.
func TestDecisionLogAuthZENDenialsBeforePolicy(t *testing.T) {
	ctx := context.Background()
	s := newLoggedScene(t, openSQLite(t))
	tool := "web_search"
	cases := []struct {
		name          string
		sub           authz.Subject
		req           authz.AuthorizeRequest
		deniedBy      []string // nil: the policy decided
		kind, id      string
		agent         bool
		wantEvaluated bool
	}{
		{"an unknown user", authz.Subject{Type: "user", ID: "ghost"}, authz.AuthorizeRequest{Action: "use_tools", Tool: &tool, Agent: "chubes-bot"},
			[]string{authz.DeniedBySubject}, "user", "ghost", false, false},
		{"an unknown token", authz.Subject{Type: "agent_token", ID: "987654"}, authz.AuthorizeRequest{Action: "chat", Agent: "chubes-bot"},
			[]string{authz.DeniedBySubject}, "agent_token", "987654", false, false},
		{"an unknown agent", authz.Subject{Type: "user", ID: "chubes"}, authz.AuthorizeRequest{Action: "chat", Agent: "nope"},
			[]string{authz.DeniedByResource}, "user", fmt.Sprintf("user:%d", s.owner.ID), false, false},
		{"a known subject on a known agent: the policy's decision", authz.Subject{Type: "user", ID: "vic"}, authz.AuthorizeRequest{Action: "chat", Agent: "chubes-bot"},
			nil, "user", "", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := len(s.log.Records())
			res, err := s.svc.AuthorizeSubject(ctx, tc.sub, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			logged := s.since(n)
			if len(logged) != 1 {
				t.Fatalf("%d decisions logged, want 1", len(logged))
			}
			r := logged[0]
			if r.Decision.ID == "" || r.Decision.ID != res.DecisionID {
				t.Errorf("logged decision id %q, the answer's %q", r.Decision.ID, res.DecisionID)
			}
			if r.Unevaluated == tc.wantEvaluated || (r.Input == nil) == tc.wantEvaluated {
				t.Errorf("unevaluated %v, input %v: want evaluated %v", r.Unevaluated, r.Input, tc.wantEvaluated)
			}
			if r.Ability != "authorize" || r.Action != tc.req.Action || r.PrincipalKind != tc.kind || (tc.id != "" && r.PrincipalID != tc.id) ||
				r.Revision != s.eng.Activation().Revision || r.Probe || r.Err != nil {
				t.Errorf("record %+v does not describe the question", r)
			}
			if (tc.req.Tool != nil) != (r.Tool == tool) || (r.AgentID != 0) != tc.agent {
				t.Errorf("record tool %q, agent %d", r.Tool, r.AgentID)
			}
			if tc.deniedBy != nil && (res.Allow || r.Decision.Allow || !slices.Equal(r.Decision.DeniedBy, tc.deniedBy) || !slices.Equal(res.DeniedBy, tc.deniedBy)) {
				t.Errorf("answer denied_by %v, logged %v, want %v", res.DeniedBy, r.Decision.DeniedBy, tc.deniedBy)
			}
		})
	}
}

// negativeID finds a negative number in a policy input: an id of a
// synthetic record (no stored record has one).
var negativeID = regexp.MustCompile(`:-[0-9]`)

func synthetic(t *testing.T, input ast.Value) bool {
	t.Helper()
	v, err := ast.JSON(input)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return negativeID.Match(b)
}

// TestDecisionLogMarksProbes: the searches' questions about synthetic
// agents and users are logged as probes, and only those.
func TestDecisionLogMarksProbes(t *testing.T) {
	ctx := context.Background()
	s := newLoggedScene(t, openSQLite(t))
	vic := authz.Subject{Type: "user", ID: "vic"}
	searches := []struct {
		name   string
		search func() error
	}{
		{"resource search by action (grantsThatAllow)", func() error {
			_, err := s.svc.SearchResources(ctx, vic, authz.SearchQuery{Action: "chat"})
			return err
		}},
		{"resource search by role (grantsThatReach)", func() error {
			_, err := s.svc.SearchResources(ctx, vic, authz.SearchQuery{Action: authz.ActionAccess, MinimumRole: "viewer"})
			return err
		}},
		{"user search (a user of no relation)", func() error {
			_, err := s.svc.SearchSubjects(ctx, "chubes-bot", authz.SubjectUser, authz.SearchQuery{Action: "chat"})
			return err
		}},
	}
	for _, sc := range searches {
		t.Run(sc.name, func(t *testing.T) {
			n := len(s.log.Records())
			if err := sc.search(); err != nil {
				t.Fatal(err)
			}
			var probes, real int
			for _, r := range s.since(n) {
				if r.Probe != synthetic(t, r.Input) {
					t.Errorf("%s decision (probe %v) on input %v", r.Ability, r.Probe, r.Input)
				}
				if r.Probe {
					probes++
				} else {
					real++
				}
			}
			if probes == 0 || real == 0 {
				t.Fatalf("%d probes and %d real decisions logged: want both", probes, real)
			}
		})
	}
}

// countingStore counts the users its listings read.
type countingStore struct {
	model.Store
	usersRead atomic.Int64
}

func (c *countingStore) ListUsers(ctx context.Context) ([]model.User, error) {
	us, err := c.Store.ListUsers(ctx)
	c.usersRead.Add(int64(len(us)))
	return us, err
}

func (c *countingStore) ListUsersAfter(ctx context.Context, afterID int64, limit int) ([]model.User, error) {
	us, err := c.Store.ListUsersAfter(ctx, afterID, limit)
	c.usersRead.Add(int64(len(us)))
	return us, err
}

// TestSearchSubjectsReadsAPageOfUsers: a page of user search reads about
// the users it shows, not the users table; the pages still add up to
// every user the policy allows, in id order.
func TestSearchSubjectsReadsAPageOfUsers(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: openSQLite(t)}
	s := newLoggedScene(t, st)
	const admins = 400 // site administrators may access every agent
	for i := range admins {
		if _, err := st.CreateUser(ctx, model.User{Login: fmt.Sprintf("admin%03d", i), Roles: []string{"administrator"}}); err != nil {
			t.Fatal(err)
		}
	}
	q := authz.SearchQuery{Action: authz.ActionAccess, MinimumRole: "viewer", Limit: 10}
	var (
		got     []string
		maxRead int64
	)
	for pages := 0; ; pages++ {
		st.usersRead.Store(0)
		page, err := s.svc.SearchSubjects(ctx, "chubes-bot", authz.SubjectUser, q)
		if err != nil {
			t.Fatal(err)
		}
		read := st.usersRead.Load()
		if read > 100 {
			t.Fatalf("page %d of %d results read %d users", pages, len(page.Results), read)
		}
		maxRead = max(maxRead, read)
		for _, r := range page.Results {
			got = append(got, r.Subject.ID)
		}
		if q.After = page.Next; q.After == "" {
			t.Logf("%d pages of at most %d users, at most %d users read per page", pages+1, q.Limit, maxRead)
			break
		}
	}
	want := []string{"chubes", "vic"}
	for i := range admins {
		want = append(want, fmt.Sprintf("admin%03d", i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the pages found %d users %v..., want %d", len(got), got[:min(len(got), 5)], len(want))
	}
}
