package authz_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
	"github.com/agentauthz/agentauthz/internal/store"
	"github.com/agentauthz/agentauthz/internal/store/pgtest"
)

// TestListAccessibleEqualsCanAccess is the differential test of the
// listings' candidate queries (ListAccessible and ListAllowed, behind
// GET /v1/agents and the AuthZEN resource search, read only the agents
// holding a grant the policy's probes accept, see probeGrants): on random
// worlds, in both stores, paging through a listing with random page sizes
// returns exactly the agents the per-agent checks allow (CanAccess for a
// minimum role, Authorize for an action), for every kind of principal.
func TestListAccessibleEqualsCanAccess(t *testing.T) {
	agents, roles, actions := 40, []string{"", "operator", "admin"}, []string{"chat", "read_jobs"}
	if raceEnabled {
		agents, roles, actions = 16, []string{"", "admin"}, []string{"chat"}
	}
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			for seed := uint64(1); seed <= uint64(*differentialWorlds); seed++ {
				t.Run(fmt.Sprintf("world=%d", seed), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(seed, 17))
					w := listWorld(t, openStore(t, db), rng, agents)
					w.checkSubjectSearch(t, rng, roles, actions)
					for _, p := range w.principals {
						for _, role := range roles {
							want := w.expected(t, func(a model.Agent) bool {
								acc, err := w.svc.CanAccess(context.Background(), p, strconv.FormatInt(a.ID, 10), role)
								if err != nil {
									t.Fatal(err)
								}
								return acc.Allowed
							})
							got := w.pageThrough(t, rng, func(after int64, limit int) ([]int64, int64, error) {
								page, next, err := w.svc.ListAccessible(context.Background(), p, role, authz.Page{AfterID: after, Limit: limit})
								ids := make([]int64, len(page))
								for i, a := range page {
									ids[i] = a.Agent.ID
								}
								return ids, next, err
							})
							if !slices.Equal(got, want) {
								t.Fatalf("%s, minimum role %q: the listing has %v, the per-agent check allows %v", p.ID, role, got, want)
							}
						}
						for _, action := range actions {
							want := w.expected(t, func(a model.Agent) bool {
								res, err := w.svc.Authorize(context.Background(), p, authz.AuthorizeRequest{Action: action, Agent: strconv.FormatInt(a.ID, 10)})
								if err != nil {
									t.Fatal(err)
								}
								return res.Allow
							})
							got := w.pageThrough(t, rng, func(after int64, limit int) ([]int64, int64, error) {
								return w.searchPage(p, action, after, limit)
							})
							if !slices.Equal(got, want) {
								t.Fatalf("%s, action %s: the search has %v, Authorize allows %v", p.ID, action, got, want)
							}
						}
					}
				})
			}
		})
	}
}

var (
	differentialWorlds = flag.Int("differential.worlds", 1, "random worlds (per store) TestListAccessibleEqualsCanAccess checks")
	differentialBundle = flag.String("differential.bundle", "", "policy bundle directory for TestListAccessibleEqualsCanAccess (default: the embedded one)")
)

type diffWorld struct {
	svc        *authz.Service
	agents     []model.Agent
	users      []model.User
	principals []*principal.Principal
}

// openStore opens and migrates a fresh store of t's own: a SQLite file, or
// a PostgreSQL database pgtest creates (and drops).
func openStore(t testing.TB, db string) model.Store {
	t.Helper()
	ctx := context.Background()
	u := "sqlite:" + filepath.Join(t.TempDir(), "w.db")
	if db == "postgres" {
		u = pgtest.NewDatabase(t)
	}
	st, err := store.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// listWorld seeds n agents of random
// owners and statuses, with random grants (unknown roles included) to
// users, audiences and the public, and tokens of random ceilings.
func listWorld(t *testing.T, st model.Store, rng *rand.Rand, n int) *diffWorld {
	t.Helper()
	ctx := context.Background()
	eng, err := policy.New(ctx, policy.Options{BundlePath: *differentialBundle})
	if err != nil {
		t.Fatal(err)
	}
	w := &diffWorld{svc: authz.New(st, eng, nil, authz.Config{})}
	userRoles := []string{"administrator", "editor", "author", "subscriber"}
	agentRoles := []string{"viewer", "operator", "admin", "owner"} // "owner" is no agent role: it must grant nothing
	var users []model.User
	for i := 0; i < 5; i++ {
		status := model.StatusActive
		if rng.IntN(5) == 0 {
			status = model.StatusDisabled
		}
		u, err := st.CreateUser(ctx, model.User{Login: fmt.Sprintf("u%d", i), Roles: []string{userRoles[rng.IntN(len(userRoles))]}, Status: status})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	w.users = users
	holders := []string{"audience:public", "audience:acme"}
	for _, u := range users {
		holders = append(holders, principal.UserID(u.ID))
	}
	for i := 0; i < n; i++ {
		status := model.StatusActive
		if rng.IntN(6) == 0 {
			status = model.StatusInactive
		}
		a, err := st.CreateAgent(ctx, model.Agent{Slug: fmt.Sprintf("a%d", i), OwnerID: users[rng.IntN(len(users))].ID, Status: status})
		if err != nil {
			t.Fatal(err)
		}
		w.agents = append(w.agents, a)
		for _, h := range holders {
			if rng.IntN(4) == 0 {
				if _, _, err := st.PutGrant(ctx, model.Grant{AgentID: a.ID, Principal: h, Role: agentRoles[rng.IntN(len(agentRoles))]}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	add := func(p *principal.Principal) { w.principals = append(w.principals, p) }
	for i := range users {
		u := &users[i]
		add(principal.ForUser(u, nil))
		add(principal.ForUser(u, []string{"audience:acme"}))
	}
	for i := 0; i < 4; i++ {
		a := w.agents[rng.IntN(len(w.agents))]
		var caps *[]string
		if rng.IntN(2) == 0 {
			c := []string{"read", "datamachine_chat"}[:rng.IntN(3)]
			caps = &c
		}
		tok, err := st.CreateToken(ctx, model.Token{AgentID: a.ID, Hash: fmt.Sprintf("%064x", rng.Uint64()), Prefix: "x", Capabilities: caps})
		if err != nil {
			t.Fatal(err)
		}
		owner := &users[slices.IndexFunc(users, func(u model.User) bool { return u.ID == a.OwnerID })]
		add(principal.ForToken(&tok, &a, owner))
	}
	add(principal.ForAudiences([]string{"audience:acme"}))
	add(principal.Anonymous())
	add(principal.Operator())
	return w
}

// expected lists, in id order, the agents allowed says yes to.
func (w *diffWorld) expected(t *testing.T, allowed func(model.Agent) bool) []int64 {
	t.Helper()
	out := []int64{}
	for _, a := range w.agents {
		if allowed(a) {
			out = append(out, a.ID)
		}
	}
	return out
}

// pageThrough reads a listing to its end with random page sizes.
func (w *diffWorld) pageThrough(t *testing.T, rng *rand.Rand, page func(after int64, limit int) ([]int64, int64, error)) []int64 {
	t.Helper()
	out := []int64{}
	var after int64
	for range len(w.agents) + 1 {
		limit := []int{1, 2, 7, 50, 1000}[rng.IntN(5)]
		ids, next, err := page(after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) > limit {
			t.Fatalf("a page of %d, asked for %d", len(ids), limit)
		}
		out = append(out, ids...)
		if next == 0 {
			return out
		}
		after = next
	}
	t.Fatal("the listing never ends")
	return nil
}

// searchPage is one page of ListAllowed (the resource search's listing).
func (w *diffWorld) searchPage(p *principal.Principal, action string, after int64, limit int) ([]int64, int64, error) {
	page, next, err := w.svc.ListAllowed(context.Background(), p, action, authz.Page{AfterID: after, Limit: limit})
	ids := make([]int64, len(page))
	for i, a := range page {
		ids[i] = a.Agent.ID
	}
	return ids, next, err
}

// checkSubjectSearch pages through the user subject search on every agent
// and checks it against CanAccess (a minimum role) and Authorize (an action)
// for every active user.
func (w *diffWorld) checkSubjectSearch(t *testing.T, rng *rand.Rand, roles, actions []string) {
	t.Helper()
	ctx := context.Background()
	var queries []authz.SearchQuery
	for _, role := range roles {
		queries = append(queries, authz.SearchQuery{Action: authz.ActionAccess, MinimumRole: role})
	}
	for _, action := range actions {
		queries = append(queries, authz.SearchQuery{Action: action})
	}
	for _, a := range w.agents {
		ref := strconv.FormatInt(a.ID, 10)
		for _, q := range queries {
			want := []string{}
			for i := range w.users {
				u := &w.users[i]
				if u.Status != model.StatusActive {
					continue
				}
				p := principal.ForUser(u, nil)
				var allowed bool
				if q.Action == authz.ActionAccess {
					acc, err := w.svc.CanAccess(ctx, p, ref, q.MinimumRole)
					if err != nil {
						t.Fatal(err)
					}
					allowed = acc.Allowed
				} else {
					res, err := w.svc.Authorize(ctx, p, authz.AuthorizeRequest{Action: q.Action, Agent: ref})
					if err != nil {
						t.Fatal(err)
					}
					allowed = res.Allow
				}
				if allowed {
					want = append(want, u.Login)
				}
			}
			got := []string{}
			q.After = ""
			for range len(w.users) + 1 {
				q.Limit = 1 + rng.IntN(3)
				page, err := w.svc.SearchSubjects(ctx, ref, authz.SubjectUser, q)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range page.Results {
					got = append(got, r.Subject.ID)
				}
				if q.After = page.Next; q.After == "" {
					break
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("agent %d, %+v: the subject search finds %v, the per-user check allows %v", a.ID, q, got, want)
			}
		}
	}
}
