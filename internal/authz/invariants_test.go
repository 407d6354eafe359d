package authz_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/agentauthz/agentauthz/bundles"
	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// bundleConfig is the default bundle's data, read by the tests as an oracle.
// (Go decides nothing; the tests check the policy's answers against the
// data it was given.)
type bundleConfig struct {
	Settings struct {
		ImpliesAll      string `json:"implies_all_capability"`
		SiteAdminsAdmin bool   `json:"site_admins_are_agent_admins"`
		TokenReach      string `json:"token_reach"`
	} `json:"settings"`
	AgentRoles map[string]int             `json:"agent_roles"`
	Roles      map[string]map[string]bool `json:"roles"`
	Actions    map[string]struct {
		Capability string `json:"capability"`
		MinRole    string `json:"min_role"`
	} `json:"actions"`
}

func loadConfig(t *testing.T) bundleConfig {
	t.Helper()
	b, err := bundles.Default.ReadFile("default/data.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Agentauthz struct {
			Config bundleConfig `json:"config"`
		} `json:"agentauthz"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Agentauthz.Config
}

func (c bundleConfig) userHas(u *model.User, capability string) bool {
	if u == nil || u.Status != model.StatusActive {
		return false
	}
	for _, r := range u.Roles {
		if c.Roles[r][capability] || c.Roles[r][c.Settings.ImpliesAll] {
			return true
		}
	}
	return false
}

func tokenAllows(t *model.Token, capability string) bool {
	if t.Capabilities == nil {
		return true
	}
	for _, c := range *t.Capabilities {
		if c == capability {
			return true
		}
	}
	return false
}

func toolAllowed(tp *model.ToolPolicy, tool string) bool {
	if tp == nil {
		return true
	}
	listed := false
	for _, x := range tp.Tools {
		listed = listed || x == tool
	}
	if tp.Mode == "allow" {
		return listed
	}
	return !listed
}

type world struct {
	svc    *authz.Service
	st     model.Store
	cfg    bundleConfig
	users  []model.User
	agents []model.Agent
	tokens []model.Token
	grants map[int64][]model.Grant
}

func newService(t *testing.T, bundlePath string) (*authz.Service, model.Store, *policy.Engine) {
	t.Helper()
	st := openSQLite(t)
	eng, err := policy.New(context.Background(), policy.Options{BundlePath: bundlePath})
	if err != nil {
		t.Fatal(err)
	}
	return authz.New(st, eng, nil, authz.Config{}), st, eng
}

// openSQLite opens and migrates a SQLite store of the test's own.
func openSQLite(t *testing.T) model.Store { return openStore(t, "sqlite") }

// randomWorld seeds users with random roles and statuses, agents with random
// tool policies, tokens with random ceilings and grants with random (also
// unknown) roles, straight into the store.
func randomWorld(t *testing.T, rng *rand.Rand) *world {
	t.Helper()
	ctx := context.Background()
	svc, st, _ := newService(t, "")
	w := &world{svc: svc, st: st, cfg: loadConfig(t), grants: map[int64][]model.Grant{}}
	roleNames := sortedKeys(w.cfg.Roles)
	agentRoles := append(sortedKeys(w.cfg.AgentRoles), "owner", "superuser") // unknown roles must grant nothing
	caps := []string{"read", "datamachine_chat", "datamachine_use_tools", "datamachine_run_pipelines", "manage_options", "not_a_capability"}
	tools := []string{"web_search", "shell", "browser"}
	for i := 0; i < 6; i++ {
		status := model.StatusActive
		if rng.IntN(6) == 0 {
			status = model.StatusDisabled
		}
		roles := []string{roleNames[rng.IntN(len(roleNames))]}
		if rng.IntN(4) == 0 {
			roles = append(roles, "ghost-role")
		}
		u, err := st.CreateUser(ctx, model.User{Login: fmt.Sprintf("u%d", i), Roles: roles, Status: status})
		if err != nil {
			t.Fatal(err)
		}
		w.users = append(w.users, u)
	}
	for i := 0; i < 8; i++ {
		var tp *model.ToolPolicy
		switch rng.IntN(4) {
		case 1:
			tp = &model.ToolPolicy{Mode: "allow", Tools: subset(rng, tools)}
		case 2:
			tp = &model.ToolPolicy{Mode: "deny", Tools: subset(rng, tools)}
		case 3:
			tp = &model.ToolPolicy{Mode: "allow", Tools: []string{}}
		}
		status := model.StatusActive
		if rng.IntN(6) == 0 {
			status = model.StatusInactive
		}
		a, err := st.CreateAgent(ctx, model.Agent{Slug: fmt.Sprintf("a%d", i), Name: "a", OwnerID: w.users[rng.IntN(len(w.users))].ID, Status: status, ToolPolicy: tp})
		if err != nil {
			t.Fatal(err)
		}
		w.agents = append(w.agents, a)
		for j := 0; j < 2; j++ {
			var c *[]string
			if rng.IntN(3) > 0 {
				s := subset(rng, caps)
				c = &s
			}
			tok, err := st.CreateToken(ctx, model.Token{AgentID: a.ID, Hash: fmt.Sprintf("%064x", rng.Uint64()), Prefix: "x", Capabilities: c})
			if err != nil {
				t.Fatal(err)
			}
			w.tokens = append(w.tokens, tok)
		}
		holders := []string{"audience:public", "audience:acme", "audience:beta"}
		for _, u := range w.users {
			holders = append(holders, principal.UserID(u.ID))
		}
		for _, h := range subset(rng, holders) {
			g, _, err := st.PutGrant(ctx, model.Grant{AgentID: a.ID, Principal: h, Role: agentRoles[rng.IntN(len(agentRoles))]})
			if err != nil {
				t.Fatal(err)
			}
			w.grants[a.ID] = append(w.grants[a.ID], g)
		}
	}
	return w
}

func subset(rng *rand.Rand, from []string) []string {
	out := []string{}
	for _, x := range from {
		if rng.IntN(2) == 0 {
			out = append(out, x)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// principals enumerates every kind of caller the world can have.
func (w *world) principals() []*principal.Principal {
	var ps []*principal.Principal
	for i := range w.users {
		u := w.users[i]
		ps = append(ps, principal.ForUser(&u, nil))
		ps = append(ps, principal.ForUser(&u, []string{"audience:acme"}))
	}
	for i := range w.tokens {
		tok := w.tokens[i]
		a, owner := w.agentByID(tok.AgentID)
		ps = append(ps, principal.ForToken(&tok, a, owner))
	}
	ps = append(ps, principal.ForAudiences([]string{"audience:acme"}), principal.ForAudiences([]string{"audience:beta", "audience:acme"}), principal.Anonymous())
	return ps
}

func (w *world) agentByID(id int64) (*model.Agent, *model.User) {
	for i := range w.agents {
		if w.agents[i].ID == id {
			return &w.agents[i], w.userByID(w.agents[i].OwnerID)
		}
	}
	return nil, nil
}

func (w *world) userByID(id int64) *model.User {
	for i := range w.users {
		if w.users[i].ID == id {
			return &w.users[i]
		}
	}
	return nil
}

// bestGrant is the highest known role among the grants matching ids.
func (w *world) bestGrant(agentID int64, ids []string) int {
	best := 0
	for _, g := range w.grants[agentID] {
		for _, id := range ids {
			if g.Principal == id && w.cfg.AgentRoles[g.Role] > best {
				best = w.cfg.AgentRoles[g.Role]
			}
		}
	}
	return best
}

func callerIDs(p *principal.Principal) []string {
	ids := []string{"audience:public"}
	if p.User != nil && p.Kind == principal.KindUser {
		ids = append(ids, principal.UserID(p.User.ID))
	}
	if p.Kind == principal.KindAudience {
		ids = append(ids, p.ID)
	}
	return append(ids, p.Audiences...)
}

// invariantWorlds is how many random worlds TestRandomWorldInvariants
// checks; `make fuzz` runs more.
var invariantWorlds = flag.Int("invariants.worlds", 6, "random worlds TestRandomWorldInvariants checks")

// TestRandomWorldInvariants checks, over random worlds, the invariants the
// policy must keep whatever the data: a role is never above the best
// matching grant unless the caller owns the agent (or is a site admin);
// list-accessible-agents is exactly the set can-access-agent allows; an
// allowed action is inside owner ∩ tool policy ∩ token; and for a token on
// its own agent, inside all three means allowed.
func TestRandomWorldInvariants(t *testing.T) {
	ctx := context.Background()
	worlds := *invariantWorlds
	if (testing.Short() || raceEnabled) && !flagSet("invariants.worlds") {
		worlds = 1 // make test runs under -race; make fuzz runs 24
	}
	for seed := 0; seed < worlds; seed++ {
		rng := rand.New(rand.NewPCG(uint64(seed), 42))
		w := randomWorld(t, rng)
		var checks int
		for _, p := range w.principals() {
			for _, minRole := range append(sortedKeys(w.cfg.AgentRoles), "") {
				listed, _, err := w.svc.ListAccessible(ctx, p, minRole, authz.Page{Limit: 1000})
				if err != nil {
					t.Fatalf("seed %d: list as %s: %v", seed, p.ID, err)
				}
				inList := map[int64]string{}
				for _, x := range listed {
					inList[x.Agent.ID] = x.Role
				}
				for _, a := range w.agents {
					acc, err := w.svc.CanAccess(ctx, p, a.Slug, minRole)
					if err != nil {
						t.Fatalf("seed %d: can-access %s on %s: %v", seed, p.ID, a.Slug, err)
					}
					checks++
					if role, ok := inList[a.ID]; ok != acc.Allowed || (ok && role != acc.Role) {
						t.Fatalf("seed %d: %s on %s (min %q): listed=%v(%s) but can-access=%v(%s)", seed, p.ID, a.Slug, minRole, ok, role, acc.Allowed, acc.Role)
					}
					w.checkRoleBound(t, seed, p, a, acc.Role)
				}
			}
			if p.Kind == principal.KindToken {
				w.checkCeilings(t, seed, p)
			}
		}
		t.Logf("seed %d: %d access checks agreed with the listing", seed, checks)
	}
}

func (w *world) checkRoleBound(t *testing.T, seed int, p *principal.Principal, a model.Agent, role string) {
	t.Helper()
	got := w.cfg.AgentRoles[role]
	if role != "" && got == 0 {
		t.Fatalf("seed %d: %s holds unknown role %q on %s", seed, p.ID, role, a.Slug)
	}
	switch p.Kind {
	case principal.KindToken:
		if a.ID != p.Token.AgentID && w.cfg.Settings.TokenReach == "agent" && role != "" {
			t.Fatalf("seed %d: %s reaches agent %s beyond its own (role %s)", seed, p.ID, a.Slug, role)
		}
		return
	case principal.KindUser:
		if a.OwnerID == p.User.ID {
			return
		}
		if w.cfg.Settings.SiteAdminsAdmin && w.cfg.userHas(p.User, w.cfg.Settings.ImpliesAll) {
			return
		}
	}
	if best := w.bestGrant(a.ID, callerIDs(p)); got > best {
		t.Fatalf("seed %d: %s holds %s (rank %d) on %s, above its best grant (rank %d)", seed, p.ID, role, got, a.Slug, best)
	}
}

func (w *world) checkCeilings(t *testing.T, seed int, p *principal.Principal) {
	t.Helper()
	ctx := context.Background()
	tools := []*string{nil, ptr("web_search"), ptr("shell")}
	for _, action := range sortedKeys(w.cfg.Actions) {
		capability := w.cfg.Actions[action].Capability
		for _, tool := range tools {
			res, err := w.svc.Authorize(ctx, p, authz.AuthorizeRequest{Action: action, Tool: tool})
			if err != nil {
				t.Fatalf("seed %d: authorize %s as %s: %v", seed, action, p.ID, err)
			}
			owner, tok, agent := w.cfg.userHas(p.User, capability), tokenAllows(p.Token, capability), true
			toolOK := tool == nil || toolAllowed(p.Agent.ToolPolicy, *tool)
			agent = p.Agent.Status == model.StatusActive
			inside := owner && tok && toolOK && agent
			if res.Allow && !inside {
				t.Fatalf("seed %d: %s allowed %s/%v outside its ceilings (owner=%v token=%v tool=%v agent=%v)", seed, p.ID, action, deref(tool), owner, tok, toolOK, agent)
			}
			if !res.Allow && inside {
				t.Fatalf("seed %d: %s denied %s/%v inside every ceiling: %v %v", seed, p.ID, action, deref(tool), res.DeniedBy, res.Reasons)
			}
			if !res.Allow && len(res.DeniedBy) == 0 {
				t.Fatalf("seed %d: a deny without denied_by", seed)
			}
		}
	}
}

func ptr(s string) *string { return &s }
func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}
