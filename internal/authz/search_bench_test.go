package authz_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// BenchmarkSearchFleet measures one page of 50 of GET /v1/agents
// (ListAccessible) and of the AuthZEN resource search over a fleet seeded
// straight into the store, on SQLite and PostgreSQL, and reports p50 and
// p99. The fleet has AGENTAUTHZ_BENCH_AGENTS agents (default 2,000; the
// issue's figure is 100,000):
//
//	AGENTAUTHZ_BENCH_AGENTS=100000 go test -run '^$' -bench SearchFleet -benchtime 200x ./internal/authz/
//
// Every iteration starts its page at a random agent id, so consecutive
// questions differ (the decision memo answers none of them twice) and the
// figures are those of fresh evaluations.
func BenchmarkSearchFleet(b *testing.B) {
	n := 2000
	if v := os.Getenv("AGENTAUTHZ_BENCH_AGENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			b.Fatalf("AGENTAUTHZ_BENCH_AGENTS=%q: want a number of at least 100", v)
		}
	}
	for _, db := range []string{"sqlite", "postgres"} {
		b.Run(fmt.Sprintf("store=%s/agents=%d", db, n), func(b *testing.B) {
			f := seedFleet(b, openBenchStore(b, db), n)
			for _, sc := range f.scenarios() {
				b.Run(sc.name, func(b *testing.B) {
					rng := rand.New(rand.NewPCG(1, 2))
					var took []time.Duration
					for b.Loop() {
						after := rng.Int64N(f.maxID)
						start := time.Now()
						got, err := sc.page(after)
						took = append(took, time.Since(start))
						if err != nil {
							b.Fatal(err)
						}
						if got > 50 {
							b.Fatalf("a page of %d", got)
						}
					}
					slices.Sort(took)
					b.ReportMetric(ms(took[len(took)/2]), "p50-ms")
					b.ReportMetric(ms(took[(len(took)*99)/100]), "p99-ms")
				})
			}
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type benchStore interface {
	model.Store
	ImportAgents(ctx context.Context, agents []model.Agent) ([]model.Agent, error)
	ImportGrants(ctx context.Context, grants []model.Grant) error
}

func openBenchStore(b *testing.B, db string) benchStore {
	st, ok := openStore(b, db).(benchStore)
	if !ok {
		b.Fatalf("the %s store has no bulk-load path", db)
	}
	return st
}

// fleet is n agents of 100 owners; grantee holds 10 operator grants spread
// over the fleet; 5% of the agents are public, 95% of those as viewer and 5%
// as operator (so asking for operator finds few among many candidates).
type fleet struct {
	svc            *authz.Service
	grantee, admin *principal.Principal
	maxID          int64
}

func seedFleet(b *testing.B, st benchStore, n int) *fleet {
	b.Helper()
	ctx := context.Background()
	mk := func(login string, roles ...string) model.User {
		u, err := st.CreateUser(ctx, model.User{Login: login, Roles: roles})
		if err != nil {
			b.Fatal(err)
		}
		return u
	}
	admin, grantee := mk("admin", "administrator"), mk("grantee", "editor")
	owners := make([]model.User, 100)
	for i := range owners {
		owners[i] = mk(fmt.Sprintf("owner%d", i), "editor")
	}
	agents := make([]model.Agent, n)
	for i := range agents {
		agents[i] = model.Agent{Slug: fmt.Sprintf("agent-%d", i), OwnerID: owners[i%len(owners)].ID}
	}
	stored, err := st.ImportAgents(ctx, agents)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var grants []model.Grant
	for _, i := range rng.Perm(n)[:10] {
		grants = append(grants, model.Grant{AgentID: stored[i].ID, Principal: "user:" + strconv.FormatInt(grantee.ID, 10), Role: "operator"})
	}
	for _, a := range stored {
		if rng.IntN(100) < 5 {
			role := "viewer"
			if rng.IntN(100) < 5 {
				role = "operator"
			}
			grants = append(grants, model.Grant{AgentID: a.ID, Principal: principal.PublicAudience, Role: role})
		}
	}
	if err := st.ImportGrants(ctx, grants); err != nil {
		b.Fatal(err)
	}
	eng, err := policy.New(ctx, policy.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return &fleet{
		svc:     authz.New(st, eng, nil, authz.Config{}),
		grantee: principal.ForUser(&grantee, nil), admin: principal.ForUser(&admin, nil),
		maxID: stored[len(stored)-1].ID,
	}
}

type scenario struct {
	name string
	page func(after int64) (int, error)
}

// scenarios are the questions the issue names, each as GET /v1/agents
// and as the AuthZEN resource search (can_access, and the chat action).
func (f *fleet) scenarios() []scenario {
	ctx := context.Background()
	whom := []struct {
		name string
		p    *principal.Principal
		sub  authz.Subject
		role string
	}{
		{"user_10_grants", f.grantee, authz.Subject{Type: authz.SubjectUser, ID: "grantee"}, ""},
		{"public", principal.Anonymous(), authz.Subject{Type: authz.SubjectAudience, ID: "public"}, ""},
		{"public_min_operator", principal.Anonymous(), authz.Subject{Type: authz.SubjectAudience, ID: "public"}, "operator"},
		{"site_admin", f.admin, authz.Subject{Type: authz.SubjectUser, ID: "admin"}, ""},
	}
	var out []scenario
	for _, w := range whom {
		out = append(out,
			scenario{"list/" + w.name, func(after int64) (int, error) {
				got, _, err := f.svc.ListAccessible(ctx, w.p, w.role, authz.Page{AfterID: after, Limit: 50})
				return len(got), err
			}},
			scenario{"search_can_access/" + w.name, func(after int64) (int, error) {
				got, err := f.svc.SearchResources(ctx, w.sub, authz.SearchQuery{Action: authz.ActionAccess, MinimumRole: w.role, After: cursor(after), Limit: 50})
				return len(got.Results), err
			}})
		if w.role == "" {
			out = append(out, scenario{"search_chat/" + w.name, func(after int64) (int, error) {
				got, err := f.svc.SearchResources(ctx, w.sub, authz.SearchQuery{Action: "chat", After: cursor(after), Limit: 50})
				return len(got.Results), err
			}})
		}
	}
	return out
}

func cursor(after int64) string {
	if after == 0 {
		return ""
	}
	return strconv.FormatInt(after, 10)
}
