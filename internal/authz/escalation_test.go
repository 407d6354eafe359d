package authz_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
	"github.com/agentauthz/agentauthz/internal/store"
)

// The escalation property: through any management ability, no caller can
// give anyone, itself included, more than it holds. Random worlds, random
// sequences of management operations performed through the service by a
// randomly chosen restricted token or operator-grant user; after every
// accepted operation, every principal's allowed (agent, action, tool) set
// may only have gained what the acting caller was itself allowed before. A
// refused operation must change nothing at all.
//
// `make test` runs a bounded default; `make fuzz` runs a long seeded one:
//
//	go test -run TestNoEscalationThroughManagement ./internal/authz/ -escalation.sequences=2000 -escalation.seed=7
//
// -escalation.bundle runs the property against another policy bundle (a
// directory), e.g. the policies of an older commit.
var (
	escSequences = flag.Int("escalation.sequences", 30, "random operation sequences TestNoEscalationThroughManagement runs")
	escSteps     = flag.Int("escalation.steps", 6, "management operations per sequence")
	escSeed      = flag.Uint64("escalation.seed", 1, "seed of the escalation property's random worlds")
	escBundle    = flag.String("escalation.bundle", "", "policy bundle directory for the escalation property (default: the embedded one)")
)

// triple is one thing a principal may do: action (with tool, "" for none)
// on an agent.
type triple struct {
	agent        int64
	action, tool string
}

func (x triple) String() string { return fmt.Sprintf("agent %d %s/%s", x.agent, x.action, x.tool) }

type allowedSet map[triple]bool

// escWorld is one random world in a store of its own; the engine is shared.
type escWorld struct {
	svc   *authz.Service
	st    store.Store
	cfg   bundleConfig
	tools []string
	caps  []string
}

var (
	escTools = []string{"web_search", "shell"}
	escNow   = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
)

func TestNoEscalationThroughManagement(t *testing.T) {
	ctx := context.Background()
	eng, err := policy.New(ctx, policy.Options{BundlePath: *escBundle})
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadConfig(t)
	sequences := *escSequences
	if (testing.Short() || raceEnabled) && !flagSet("escalation.sequences") {
		sequences = max(1, sequences/4)
	}
	var ops, accepted int
	byKind := map[string]int{}
	for seq := 0; seq < sequences; seq++ {
		rng := rand.New(rand.NewPCG(*escSeed, uint64(seq)))
		w := newEscWorld(t, eng, cfg, rng)
		before := w.snapshot(t)
		for step := 0; step < *escSteps; step++ {
			callers := w.callers(t)
			if len(callers) == 0 {
				break
			}
			caller := callers[rng.IntN(len(callers))]
			held := before[caller.ID]
			what, err := w.randomOperation(t, rng, caller)
			after := w.snapshot(t)
			prior := before
			before = after // the next operation starts from this state
			ops++
			if err != nil {
				if !isDomainError(err) {
					t.Fatalf("seed %d seq %d step %d: %s by %s failed unexpectedly: %v", *escSeed, seq, step, what, caller.ID, err)
				}
				if diff := diffSnapshots(prior, after); diff != "" {
					t.Fatalf("seed %d seq %d step %d: refused %s by %s (%v) still changed: %s", *escSeed, seq, step, what, caller.ID, err, diff)
				}
				continue
			}
			accepted++
			byKind[strings.Fields(what)[0]]++
			for who, set := range after {
				for x := range set {
					if !prior[who][x] && !held[x] {
						t.Fatalf("seed %d seq %d step %d: %s by %s gave %s %s, which the caller was not allowed", *escSeed, seq, step, what, caller.ID, who, x)
					}
				}
			}
		}
	}
	t.Logf("%d sequences, %d management operations, %d accepted %v", sequences, ops, accepted, byKind)
	if accepted == 0 {
		t.Fatal("no operation was accepted: the property checked nothing")
	}
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func isDomainError(err error) bool {
	var (
		denied   *authz.DeniedError
		invalid  *authz.ValidationError
		notFound *authz.NotFoundError
		conflict *authz.ConflictError
	)
	return errors.As(err, &denied) || errors.As(err, &invalid) || errors.As(err, &notFound) || errors.As(err, &conflict)
}

func newEscWorld(t *testing.T, eng *policy.Engine, cfg bundleConfig, rng *rand.Rand) *escWorld {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "esc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	w := &escWorld{
		svc: authz.New(st, eng, nil, authz.Config{Now: func() time.Time { return escNow }, Logger: slog.New(slog.DiscardHandler)}),
		st:  st, cfg: cfg, tools: escTools,
	}
	for _, a := range sortedKeys(cfg.Actions) {
		w.caps = append(w.caps, cfg.Actions[a].Capability)
	}
	w.caps = append(w.caps, "datamachine_manage_agents")
	sort.Strings(w.caps)
	w.caps = compactStrings(w.caps)

	roleNames := sortedKeys(cfg.Roles)
	var users []store.User
	for i := 0; i < 3; i++ {
		u, err := st.CreateUser(ctx, store.User{Login: fmt.Sprintf("u%d", i), Roles: []string{roleNames[rng.IntN(len(roleNames))]}, Status: store.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	agentRoles := sortedKeys(cfg.AgentRoles)
	for i := 0; i < 3; i++ {
		status := store.StatusActive
		if rng.IntN(8) == 0 {
			status = store.StatusInactive
		}
		a, err := st.CreateAgent(ctx, store.Agent{Slug: fmt.Sprintf("a%d", i), Name: "a", OwnerID: users[rng.IntN(len(users))].ID, Status: status, ToolPolicy: w.randomToolPolicy(rng)})
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 2; j++ {
			tok := store.Token{AgentID: a.ID, Hash: fmt.Sprintf("%064x", rng.Uint64()), Prefix: "x", Capabilities: w.randomCaps(rng), ExpiresAt: randomExpiry(rng)}
			if _, err := st.CreateToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		holders := []string{"audience:public", "audience:acme"}
		for _, u := range users {
			if u.ID != a.OwnerID {
				holders = append(holders, principal.UserID(u.ID))
			}
		}
		for _, h := range subset(rng, holders) {
			if _, _, err := st.PutGrant(ctx, store.Grant{AgentID: a.ID, Principal: h, Role: agentRoles[rng.IntN(len(agentRoles))]}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return w
}

func (w *escWorld) randomToolPolicy(rng *rand.Rand) *store.ToolPolicy {
	switch rng.IntN(4) {
	case 1:
		return &store.ToolPolicy{Mode: "allow", Tools: subset(rng, w.tools)}
	case 2:
		return &store.ToolPolicy{Mode: "deny", Tools: subset(rng, w.tools)}
	}
	return nil
}

// randomCaps is a token ceiling: null (the owner's) a quarter of the time,
// otherwise a random list.
func (w *escWorld) randomCaps(rng *rand.Rand) *[]string {
	if rng.IntN(4) == 0 {
		return nil
	}
	c := subset(rng, w.caps)
	return &c
}

func randomExpiry(rng *rand.Rand) *time.Time {
	if rng.IntN(2) == 0 {
		return nil
	}
	at := escNow.Add(time.Duration(1+rng.IntN(48)) * time.Hour)
	return &at
}

// state reads the world back from the store: active users, agents with
// owners, and the live tokens (as the credential resolver would accept them).
func (w *escWorld) state(t *testing.T) (users []store.User, agents []store.Agent, owners map[int64]*store.User, live []*principal.Principal) {
	t.Helper()
	ctx := context.Background()
	users, err := w.st.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	agents, err = w.st.ListAgents(ctx, store.AgentQuery{All: true})
	if err != nil {
		t.Fatal(err)
	}
	owners = map[int64]*store.User{}
	for i := range users {
		owners[users[i].ID] = &users[i]
	}
	for i := range agents {
		a := &agents[i]
		toks, err := w.st.ListTokens(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		owner := owners[a.OwnerID]
		for j := range toks {
			tok := toks[j]
			if tok.RevokedAt != nil || (tok.ExpiresAt != nil && !tok.ExpiresAt.After(escNow)) ||
				a.Status != store.StatusActive || owner == nil || owner.Status != store.StatusActive {
				continue
			}
			live = append(live, principal.ForToken(&tok, a, owner))
		}
	}
	return users, agents, owners, live
}

// snapshot computes every principal's allowed set through Authorize.
func (w *escWorld) snapshot(t *testing.T) map[string]allowedSet {
	t.Helper()
	users, agents, _, live := w.state(t)
	ps := append([]*principal.Principal{}, live...)
	for i := range users {
		ps = append(ps, principal.ForUser(&users[i], nil))
	}
	ps = append(ps, principal.ForAudiences([]string{"audience:acme"}), principal.Anonymous())
	out := map[string]allowedSet{}
	for _, p := range ps {
		set := allowedSet{}
		for _, a := range agents {
			if p.Kind == principal.KindToken && a.ID != p.Token.AgentID && w.cfg.Settings.TokenReach == "agent" {
				// A token holds nothing beyond its agent with the default
				// token_reach (TestRandomWorldInvariants checks that), and
				// no management operation changes the reach.
				continue
			}
			for _, action := range sortedKeys(w.cfg.Actions) {
				for _, tool := range append([]string{""}, w.tools...) {
					req := authz.AuthorizeRequest{Action: action, Agent: a.Slug}
					if tool != "" {
						req.Tool = ptr(tool)
					}
					res, err := w.svc.Authorize(context.Background(), p, req)
					if err != nil {
						t.Fatalf("authorize %s on %s as %s: %v", action, a.Slug, p.ID, err)
					}
					if res.Allow {
						set[triple{a.ID, action, tool}] = true
					}
				}
			}
		}
		out[p.ID] = set
	}
	return out
}

// callers are the restricted actors: every live token, and every user who
// holds an operator grant somewhere.
func (w *escWorld) callers(t *testing.T) []*principal.Principal {
	t.Helper()
	users, agents, _, live := w.state(t)
	out := append([]*principal.Principal{}, live...)
	for i := range users {
		for _, a := range agents {
			gs, err := w.st.GrantsFor(context.Background(), []int64{a.ID}, []string{principal.UserID(users[i].ID)})
			if err != nil {
				t.Fatal(err)
			}
			if len(gs) > 0 && gs[0].Role == "operator" {
				out = append(out, principal.ForUser(&users[i], nil))
				break
			}
		}
	}
	return out
}

// randomOperation performs one management operation as p, mostly on p's own
// agent when p is a token, and describes it.
func (w *escWorld) randomOperation(t *testing.T, rng *rand.Rand, p *principal.Principal) (string, error) {
	t.Helper()
	ctx := context.Background()
	users, agents, _, live := w.state(t)
	if len(agents) == 0 {
		return "noop", nil
	}
	a := agents[rng.IntN(len(agents))]
	if p.Kind == principal.KindToken && rng.IntN(5) > 0 {
		a = *p.Agent
	}
	agentRoles := sortedKeys(w.cfg.AgentRoles)
	targets := []string{"audience:public", "audience:acme"}
	for _, u := range users {
		targets = append(targets, principal.UserID(u.ID))
	}
	switch op := rng.IntN(20); {
	case op < 6:
		who, role := targets[rng.IntN(len(targets))], agentRoles[rng.IntN(len(agentRoles))]
		_, _, err := w.svc.PutGrant(ctx, p, a.Slug, who, role)
		return fmt.Sprintf("grant %s %s on %s", who, role, a.Slug), err
	case op < 8:
		who := targets[rng.IntN(len(targets))]
		return fmt.Sprintf("revoke-grant %s on %s", who, a.Slug), w.svc.DeleteGrant(ctx, p, a.Slug, who)
	case op < 12:
		u := authz.AgentUpdate{}
		switch rng.IntN(3) {
		case 0:
			u.ToolPolicy = w.randomToolPolicy(rng)
			u.ClearToolPolicy = u.ToolPolicy == nil
		case 1:
			s := store.StatusActive
			if rng.IntN(2) == 0 {
				s = store.StatusInactive
			}
			u.Status = &s
		default:
			s := store.StatusActive
			u.Status = &s
			u.ClearToolPolicy = true
		}
		_, err := w.svc.UpdateAgent(ctx, p, a.Slug, u)
		return fmt.Sprintf("update-agent %s %s", a.Slug, describeUpdate(u)), err
	case op < 16:
		req := authz.CreateTokenRequest{Label: "minted", Capabilities: w.randomCaps(rng)}
		if rng.IntN(2) == 0 {
			s := int64(3600 * (1 + rng.IntN(72)))
			req.ExpiresIn = &s
		}
		if p.Kind == principal.KindToken && rng.IntN(2) == 0 {
			// what an honest minter asks for: within its own list and life
			req.Capabilities = p.Token.Capabilities
			if req.Capabilities != nil {
				c := subset(rng, *req.Capabilities)
				req.Capabilities = &c
			}
			if p.Token.ExpiresAt != nil {
				s := int64(p.Token.ExpiresAt.Sub(escNow)/time.Second) - int64(rng.IntN(3600))
				req.ExpiresIn = &s
			}
		}
		_, err := w.svc.CreateToken(ctx, p, a.Slug, req)
		return fmt.Sprintf("mint on %s caps=%v expires_in=%v", a.Slug, derefCaps(req.Capabilities), derefInt(req.ExpiresIn)), err
	case op < 19:
		var ids []int64
		for _, l := range live {
			if l.Token.AgentID == a.ID {
				ids = append(ids, l.Token.ID)
			}
		}
		if len(ids) == 0 {
			return "noop", nil
		}
		id := ids[rng.IntN(len(ids))]
		_, err := w.svc.RevokeToken(ctx, p, a.Slug, id)
		return fmt.Sprintf("revoke-token %d on %s", id, a.Slug), err
	default:
		return fmt.Sprintf("delete-agent %s", a.Slug), w.svc.DeleteAgent(ctx, p, a.Slug)
	}
}

func describeUpdate(u authz.AgentUpdate) string {
	var parts []string
	if u.Status != nil {
		parts = append(parts, "status="+*u.Status)
	}
	if u.ToolPolicy != nil {
		parts = append(parts, fmt.Sprintf("tool_policy=%s%v", u.ToolPolicy.Mode, u.ToolPolicy.Tools))
	}
	if u.ClearToolPolicy {
		parts = append(parts, "tool_policy=null")
	}
	return strings.Join(parts, " ")
}

func derefCaps(c *[]string) any {
	if c == nil {
		return "null"
	}
	return *c
}

func derefInt(n *int64) any {
	if n == nil {
		return "never"
	}
	return *n
}

// diffSnapshots names the first difference between two snapshots, "" if none.
func diffSnapshots(a, b map[string]allowedSet) string {
	for who, set := range b {
		for x := range set {
			if !a[who][x] {
				return fmt.Sprintf("%s gained %s", who, x)
			}
		}
	}
	for who, set := range a {
		for x := range set {
			if !b[who][x] {
				return fmt.Sprintf("%s lost %s", who, x)
			}
		}
	}
	return ""
}

func compactStrings(ss []string) []string {
	out := ss[:0]
	for i, s := range ss {
		if i == 0 || s != ss[i-1] {
			out = append(out, s)
		}
	}
	return out
}
