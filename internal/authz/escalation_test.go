package authz_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
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
	st    model.Store
	cfg   bundleConfig
	tools []string
	caps  []string
	// created counts agents created by the sequence, for fresh slugs.
	created int
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
		// make test runs under -race, which slows this several-fold: a few
		// seconds of sequences there, hundreds in make fuzz.
		sequences = max(1, sequences/8)
	}
	var (
		mu            sync.Mutex
		ops, accepted int
		byKind        = map[string]int{}
	)
	t.Run("sequences", func(t *testing.T) {
		for seq := 0; seq < sequences; seq++ {
			t.Run(fmt.Sprint(seq), func(t *testing.T) {
				t.Parallel()
				n, ok, kinds := runEscalationSequence(t, eng, cfg, seq)
				mu.Lock()
				defer mu.Unlock()
				ops, accepted = ops+n, accepted+ok
				for k, v := range kinds {
					byKind[k] += v
				}
			})
		}
	})
	t.Logf("%d sequences, %d management operations, %d accepted %v", sequences, ops, accepted, byKind)
	if accepted == 0 {
		t.Fatal("no operation was accepted: the property checked nothing")
	}
}

// runEscalationSequence plays one seeded sequence and reports how many
// operations it tried and accepted, by kind.
func runEscalationSequence(t *testing.T, eng *policy.Engine, cfg bundleConfig, seq int) (ops, accepted int, byKind map[string]int) {
	byKind = map[string]int{}
	rng := rand.New(rand.NewPCG(*escSeed, uint64(seq)))
	w := newEscWorld(t, eng, cfg, rng)
	before := w.snapshot(t)
	for step := 0; step < *escSteps; step++ {
		callers := w.callers(t)
		if len(callers) == 0 {
			break
		}
		caller := callers[rng.IntN(len(callers))]
		held := before[caller.p.ID]
		what, err := w.randomOperation(t, rng, caller)
		after := w.snapshot(t)
		prior := before
		before = after // the next operation starts from this state
		ops++
		where := fmt.Sprintf("seed %d seq %d step %d: %s by %s", *escSeed, seq, step, what, caller.p.ID)
		if err != nil {
			if !isDomainError(err) {
				t.Fatalf("%s failed unexpectedly: %v", where, err)
			}
			if diff := diffSnapshots(prior, after); diff != "" {
				t.Fatalf("refused %s (%v) still changed: %s", where, err, diff)
			}
			continue
		}
		accepted++
		byKind[strings.Fields(what)[0]]++
		known := agentsIn(prior)
		for who, set := range after {
			for x := range set {
				if prior[who][x] || held[x] {
					continue
				}
				// An agent the operation created is new to everyone: what
				// anyone may do there must be something the caller may do
				// somewhere.
				if !known[x.agent] && heldAnywhere(held, x) {
					continue
				}
				t.Fatalf("%s gave %s %s, which the caller was not allowed", where, who, x)
			}
		}
	}
	return ops, accepted, byKind
}

func agentsIn(snapshot map[string]allowedSet) map[int64]bool {
	out := map[int64]bool{}
	for _, set := range snapshot {
		for x := range set {
			out[x.agent] = true
		}
	}
	return out
}

func heldAnywhere(held allowedSet, x triple) bool {
	for h := range held {
		if h.action == x.action && h.tool == x.tool {
			return true
		}
	}
	return false
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
	st := openSQLite(t)
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
	var users []model.User
	for i := 0; i < 3; i++ {
		u, err := st.CreateUser(ctx, model.User{Login: fmt.Sprintf("u%d", i), Roles: []string{roleNames[rng.IntN(len(roleNames))]}, Status: model.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	agentRoles := sortedKeys(cfg.AgentRoles)
	for i := 0; i < 3; i++ {
		status := model.StatusActive
		if rng.IntN(8) == 0 {
			status = model.StatusInactive
		}
		a, err := st.CreateAgent(ctx, model.Agent{Slug: fmt.Sprintf("a%d", i), Name: "a", OwnerID: users[rng.IntN(len(users))].ID, Status: status, ToolPolicy: w.randomToolPolicy(rng)})
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 2; j++ {
			tok := model.Token{AgentID: a.ID, Hash: fmt.Sprintf("%064x", rng.Uint64()), Prefix: "x", Capabilities: w.randomCaps(rng), ExpiresAt: randomExpiry(rng)}
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
			if _, _, err := st.PutGrant(ctx, model.Grant{AgentID: a.ID, Principal: h, Role: agentRoles[rng.IntN(len(agentRoles))]}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return w
}

func (w *escWorld) randomToolPolicy(rng *rand.Rand) *model.ToolPolicy {
	switch rng.IntN(4) {
	case 1:
		return &model.ToolPolicy{Mode: "allow", Tools: subset(rng, w.tools)}
	case 2:
		return &model.ToolPolicy{Mode: "deny", Tools: subset(rng, w.tools)}
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
func (w *escWorld) state(t *testing.T) (users []model.User, agents []model.Agent, owners map[int64]*model.User, live []*principal.Principal) {
	t.Helper()
	ctx := context.Background()
	users, err := w.st.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	agents, err = w.st.ListAgents(ctx, model.AgentQuery{All: true})
	if err != nil {
		t.Fatal(err)
	}
	owners = map[int64]*model.User{}
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
				a.Status != model.StatusActive || owner == nil || owner.Status != model.StatusActive {
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

// caller is a restricted actor and the agents it acts on: a live token
// (mostly on its own agent), or a user who is neither a site administrator
// nor acting as an owner, on the agents where a grant is all it has.
type caller struct {
	p      *principal.Principal
	agents []model.Agent
}

// callers are the restricted actors of the world.
func (w *escWorld) callers(t *testing.T) []caller {
	t.Helper()
	users, agents, _, live := w.state(t)
	var out []caller
	for _, p := range live {
		out = append(out, caller{p: p, agents: agents})
	}
	for i := range users {
		u := &users[i]
		if w.cfg.userHas(u, w.cfg.Settings.ImpliesAll) {
			continue // a site administrator is no restricted caller
		}
		var granted []model.Agent
		for _, a := range agents {
			if a.OwnerID == u.ID {
				continue
			}
			gs, err := w.st.GrantsFor(context.Background(), []int64{a.ID}, []string{principal.UserID(u.ID)})
			if err != nil {
				t.Fatal(err)
			}
			if len(gs) > 0 {
				granted = append(granted, a)
			}
		}
		if len(granted) > 0 {
			out = append(out, caller{p: principal.ForUser(u, nil), agents: granted})
		}
	}
	return out
}

// randomOperation performs one management operation as c, mostly on c's own
// agent when c is a token, and describes it.
func (w *escWorld) randomOperation(t *testing.T, rng *rand.Rand, c caller) (string, error) {
	t.Helper()
	ctx := context.Background()
	p := c.p
	users, _, _, live := w.state(t)
	if len(c.agents) == 0 {
		return "noop", nil
	}
	a := c.agents[rng.IntN(len(c.agents))]
	if p.Kind == principal.KindToken && rng.IntN(5) > 0 {
		a = *p.Agent
	}
	agentRoles := sortedKeys(w.cfg.AgentRoles)
	targets := []string{"audience:public", "audience:acme"}
	for _, u := range users {
		targets = append(targets, principal.UserID(u.ID))
	}
	switch op := rng.IntN(24); {
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
			s := model.StatusActive
			if rng.IntN(2) == 0 {
				s = model.StatusInactive
			}
			u.Status = &s
		default:
			s := model.StatusActive
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
	case op < 21:
		if p.Kind != principal.KindToken {
			// A user creating its own agent exercises its own capabilities
			// as an owner, which is no management of anyone's access.
			return "noop", nil
		}
		tp := w.randomToolPolicy(rng)
		if p.Kind == principal.KindToken && rng.IntN(2) == 0 {
			tp = p.Agent.ToolPolicy // an honest creator keeps its own tool policy
		}
		w.created++
		slug := fmt.Sprintf("n%d", w.created)
		_, err := w.svc.CreateAgent(ctx, p, authz.CreateAgentRequest{Slug: slug, ToolPolicy: tp})
		return fmt.Sprintf("create-agent %s tool_policy=%s", slug, describePolicy(tp)), err
	case op < 23:
		target := users[rng.IntN(len(users))]
		upd := authz.UserUpdate{}
		switch rng.IntN(3) {
		case 0:
			roles := []string{sortedKeys(w.cfg.Roles)[rng.IntN(len(w.cfg.Roles))]}
			upd.Roles = &roles
		case 1:
			s := model.StatusDisabled
			upd.Status = &s
		default:
			s := model.StatusActive
			upd.Status = &s
		}
		_, err := w.svc.UpdateUser(ctx, p, target.Login, upd)
		return fmt.Sprintf("update-user %s %s", target.Login, describeUserUpdate(upd)), err
	default:
		return fmt.Sprintf("delete-agent %s", a.Slug), w.svc.DeleteAgent(ctx, p, a.Slug)
	}
}

func describePolicy(tp *model.ToolPolicy) string {
	if tp == nil {
		return "null"
	}
	return fmt.Sprintf("%s%v", tp.Mode, tp.Tools)
}

func describeUserUpdate(u authz.UserUpdate) string {
	if u.Roles != nil {
		return fmt.Sprintf("roles=%v", *u.Roles)
	}
	return "status=" + *u.Status
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
