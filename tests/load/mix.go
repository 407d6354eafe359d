package main

// The mixed workload ("a benchmark that cannot be fooled by the memo"):
// many tokens on many agents, with varied owner roles, tool policies and
// token capability lists, asked a spread of actions and tools with far more
// distinct questions than the decision memo holds at its default size
// (--mix-memo-size changes it, and the output says so). Each size is seeded
// straight into a SQLite store (not through the API), then agentauthz, OPA's
// server on our bundle (the very input agentauthz builds) and OPA's server
// on a minimal hand-written three-ceiling policy (minimal/minimal.rego, the
// facts it needs as input) are driven with the same question sequence.
// Every answer is checked against the expected decision, computed here from
// the seeded facts and the bundle's configuration.

import (
	"bytes"
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, for the bulk seed

	"github.com/agentauthz/agentauthz/internal/credential"
	"github.com/agentauthz/agentauthz/internal/store"
	"github.com/agentauthz/agentauthz/internal/token"
)

//go:embed minimal/minimal.rego
var minimalRego []byte

// serverCacheTTL is cmd/agentauthz's --cache-ttl default, which the mix
// runs with (kept in step by hand: the binary's package cannot be imported).
const serverCacheTTL = 60 * time.Second

// unknownAction is asked too: the policy denies it (unknown_action).
const unknownAction = "export_data"

// mixTools is the tool universe; a question names one of them or no tool.
var mixTools = func() []string {
	ts := []string{"web_search", "fetch_url", "run_code", "read_file", "write_file", "send_email",
		"calendar", "sql_query", "vector_search", "image_gen", "translate", "summarize"}
	for i := len(ts); i < 48; i++ {
		ts = append(ts, fmt.Sprintf("tool_%02d", i))
	}
	return ts
}()

// bundleConfig is the part of bundles/default/data.json the expected
// decisions (and the minimal policy's data) follow.
type bundleConfig struct {
	Roles   map[string]map[string]bool `json:"roles"`
	Actions map[string]struct {
		Capability *string `json:"capability"`
	} `json:"actions"`
	Settings struct {
		ImpliesAll string `json:"implies_all_capability"`
	} `json:"settings"`
}

func readBundleConfig(root string) (bundleConfig, error) {
	var doc struct {
		Agentauthz struct {
			Config bundleConfig `json:"config"`
		} `json:"agentauthz"`
	}
	path := filepath.Join(root, "bundles", "default", "data.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return bundleConfig{}, err
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return bundleConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	c := doc.Agentauthz.Config
	if len(c.Roles) == 0 || len(c.Actions) == 0 {
		return c, fmt.Errorf("%s: no agentauthz.config.roles or .actions", path)
	}
	return c, nil
}

type mixUser struct {
	id    int64
	roles []string
}

type mixPolicy struct {
	Mode  string   `json:"mode"`
	Tools []string `json:"tools"`
}

type mixAgent struct {
	id     int64
	owner  int // index into users
	policy *mixPolicy
	listed map[string]bool // the policy's tools, as a set
}

type mixToken struct {
	id    int64
	agent int // index into agents
	caps  *[]string
}

// mixWorld is one seeded size: the facts, the raw tokens, the expected
// decisions and the request bodies' per-token parts.
type mixWorld struct {
	n       int
	users   []mixUser
	agents  []mixAgent
	tokens  []mixToken
	raw     []string
	actions []string          // the bundle's actions with a capability, then unknownAction
	capOf   map[string]string // action -> capability
	held    []map[string]bool // per user: capabilities its roles hold
	cdf     []float64         // token distribution (zipf); nil: uniform
	dist    string
	// per token: the OPA request body up to the action's opening quote
	ourPrefix, minPrefix []string
}

// questionsPerToken: every action, with no tool or one of the tools.
func (m *mixWorld) questionsPerToken() int { return len(m.actions) * (len(mixTools) + 1) }

// splitmix64 is a bijective mixer: distinct (seed, worker, i) give distinct,
// well spread numbers, so no request sequence repeats.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// question is the i-th request of worker w in the sequence seed: a token, an
// action and a tool (-1: none, one question in five).
func (m *mixWorld) question(seed uint64, w int, i uint64) (tok, act, tool int) {
	h := splitmix64(seed ^ uint64(w)<<44 ^ i)
	g := splitmix64(h)
	if m.cdf != nil {
		u := float64(h>>11) / (1 << 53)
		tok = sort.SearchFloat64s(m.cdf, u)
		if tok >= m.n {
			tok = m.n - 1
		}
	} else {
		tok = int((h >> 32) * uint64(m.n) >> 32)
	}
	act = int(g % uint64(len(m.actions)))
	tool = -1
	if (g>>16)%5 != 0 {
		tool = int((g >> 24) % uint64(len(mixTools)))
	}
	return tok, act, tool
}

// allow is the expected decision: the token's own agent, whose owner is
// admin on it, so the layers left are the action being known, the owner's
// and the token's capability ceilings and the tool policy (every user and
// agent is active).
func (m *mixWorld) allow(tok, act, tool int) bool {
	cap, known := m.capOf[m.actions[act]]
	if !known {
		return false
	}
	t := &m.tokens[tok]
	a := &m.agents[t.agent]
	if !m.held[a.owner][cap] {
		return false
	}
	if t.caps != nil && !contains(*t.caps, cap) {
		return false
	}
	if tool >= 0 && a.policy != nil {
		listed := a.listed[mixTools[tool]]
		if (a.policy.Mode == "allow") == !listed {
			return false
		}
	}
	return true
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// buildMix draws the facts of n tokens on n/perAgent agents (users: a
// quarter of the agents, at least 5), deterministically from seed.
func buildMix(conf bundleConfig, n, perAgent int, dist string, seed uint64) (*mixWorld, error) {
	rng := rand.New(rand.NewPCG(seed, 0x6d6978))
	m := &mixWorld{n: n, capOf: map[string]string{}, dist: dist}
	var caps []string
	for name, a := range conf.Actions {
		if a.Capability == nil || *a.Capability == "" {
			continue // no capability: a different shape of decision; not in the mix
		}
		m.actions = append(m.actions, name)
		m.capOf[name] = *a.Capability
		if !contains(caps, *a.Capability) {
			caps = append(caps, *a.Capability)
		}
	}
	if _, clash := conf.Actions[unknownAction]; clash {
		return nil, fmt.Errorf("the bundle defines %q, which the mix asks as an unknown action", unknownAction)
	}
	sort.Strings(m.actions)
	sort.Strings(caps)
	m.actions = append(m.actions, unknownAction)

	// users: every single role, adjacent pairs, and no role at all
	var roleNames []string
	for r := range conf.Roles {
		roleNames = append(roleNames, r)
	}
	sort.Strings(roleNames)
	var roleSets [][]string
	for i, r := range roleNames {
		roleSets = append(roleSets, []string{r})
		if i+1 < len(roleNames) {
			roleSets = append(roleSets, []string{r, roleNames[i+1]})
		}
	}
	roleSets = append(roleSets, []string{})
	nAgents := max(1, n/perAgent)
	nUsers := max(5, nAgents/4)
	for i := range nUsers {
		roles := roleSets[rng.IntN(len(roleSets))]
		held := map[string]bool{}
		for _, r := range roles {
			for c, ok := range conf.Roles[r] {
				if ok {
					held[c] = true
				}
			}
			if conf.Settings.ImpliesAll != "" && conf.Roles[r][conf.Settings.ImpliesAll] {
				for _, c := range caps {
					held[c] = true
				}
			}
		}
		m.users = append(m.users, mixUser{id: int64(i + 1), roles: roles})
		m.held = append(m.held, held)
	}
	// agents: 30 % no tool policy, 40 % an allow list of 2-12 tools, 30 % a
	// deny list of 1-8
	for i := range nAgents {
		a := mixAgent{id: int64(i + 1), owner: rng.IntN(nUsers)}
		switch r := rng.IntN(10); {
		case r < 3:
		case r < 7:
			a.policy = &mixPolicy{Mode: "allow", Tools: pickTools(rng, 2+rng.IntN(11))}
		default:
			a.policy = &mixPolicy{Mode: "deny", Tools: pickTools(rng, 1+rng.IntN(8))}
		}
		if a.policy != nil {
			a.listed = map[string]bool{}
			for _, t := range a.policy.Tools {
				a.listed[t] = true
			}
		}
		m.agents = append(m.agents, a)
	}
	// tokens: 35 % the owner's ceiling (null), 10 % nothing ([]), 55 % a
	// random subset of the actions' capabilities
	for i := range n {
		t := mixToken{id: int64(i + 1), agent: i % nAgents}
		switch r := rng.IntN(20); {
		case r < 7:
		case r < 9:
			t.caps = &[]string{}
		default:
			var list []string
			for _, c := range caps {
				if rng.IntN(10) < 6 {
					list = append(list, c)
				}
			}
			if list == nil {
				list = []string{}
			}
			t.caps = &list
		}
		m.tokens = append(m.tokens, t)
	}
	if dist == "zipf" {
		// P(token k) ∝ 1/(k+1): a few hot tokens, a long tail
		m.cdf = make([]float64, n)
		sum := 0.0
		for k := range n {
			sum += 1 / float64(k+1)
			m.cdf[k] = sum
		}
		for k := range m.cdf {
			m.cdf[k] /= sum
		}
	}
	return m, m.renderInputs()
}

func pickTools(rng *rand.Rand, k int) []string {
	perm := rng.Perm(len(mixTools))[:k]
	sort.Ints(perm)
	out := make([]string, k)
	for i, p := range perm {
		out[i] = mixTools[p]
	}
	return out
}

// renderInputs builds, per token, the fixed part of both OPA bodies. The
// bundle's input is the one internal/authz builds (input.go) for a token on
// its own agent; the minimal policy gets only the facts it reads.
func (m *mixWorld) renderInputs() error {
	m.ourPrefix = make([]string, m.n)
	m.minPrefix = make([]string, m.n)
	for i := range m.tokens {
		t := &m.tokens[i]
		a := &m.agents[t.agent]
		u := &m.users[a.owner]
		user := map[string]any{"id": u.id, "roles": u.roles, "status": "active"}
		in := map[string]any{
			"ability": "authorize",
			"principal": map[string]any{
				"kind": "token", "id": "token:" + strconv.FormatInt(t.id, 10), "user": user,
				"token": map[string]any{"id": t.id, "agent_id": a.id, "capabilities": t.caps, "expires_at": nil},
			},
			"agent": map[string]any{
				"id": a.id, "owner_id": u.id, "status": "active", "tool_policy": a.policy, "owner": user,
			},
			"grants": []any{},
		}
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		m.ourPrefix[i] = `{"input":` + string(b[:len(b)-1]) + `,"action":"`
		b, err = json.Marshal(map[string]any{"owner_roles": u.roles, "token_caps": t.caps, "tool_policy": a.policy})
		if err != nil {
			return err
		}
		m.minPrefix[i] = `{"input":` + string(b[:len(b)-1]) + `,"action":"`
	}
	return nil
}

// sqliteTimeLayout is the store's SQLite timestamp text (internal/store,
// dialect.go): fixed width, UTC, so that text order is time order.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000000Z"

// seedStore creates the store's schema with the store package (Open +
// Migrate), then bulk-inserts the world in one transaction: per-row
// CreateToken transactions would take minutes at 100,000 tokens. The rows
// are what the store's own Create* methods write (roles and capabilities as
// JSON text, the token's SHA-256 hash and display hint); a few tokens are
// then resolved back through the store API as a check.
func (m *mixWorld) seedStore(ctx context.Context, dbPath string) error {
	url := "sqlite:" + dbPath
	st, err := store.Open(ctx, url)
	if err != nil {
		return err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return err
	}
	st.Close()

	db, err := sql.Open("sqlite", dbPath+"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	now := time.Now().UTC().Format(sqliteTimeLayout)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	ins := func(q string, rows int, args func(i int) ([]any, error)) error {
		stmt, err := tx.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i := range rows {
			a, err := args(i)
			if err != nil {
				return err
			}
			if _, err := stmt.ExecContext(ctx, a...); err != nil {
				return fmt.Errorf("%s: row %d: %w", q, i, err)
			}
		}
		return nil
	}
	err = ins(`INSERT INTO users (id, login, name, roles, status, created_at) VALUES (?, ?, '', ?, 'active', ?)`, len(m.users), func(i int) ([]any, error) {
		u := m.users[i]
		roles, err := json.Marshal(u.roles)
		return []any{u.id, "mix-user-" + strconv.FormatInt(u.id, 10), string(roles), now}, err
	})
	if err != nil {
		return err
	}
	err = ins(`INSERT INTO agents (id, slug, name, owner_id, status, tool_policy, created_at, updated_at) VALUES (?, ?, '', ?, 'active', ?, ?, ?)`, len(m.agents), func(i int) ([]any, error) {
		a := m.agents[i]
		var tp any
		if a.policy != nil {
			b, err := json.Marshal(a.policy)
			if err != nil {
				return nil, err
			}
			tp = string(b)
		}
		return []any{a.id, mixSlug(a.id), m.users[a.owner].id, tp, now, now}, nil
	})
	if err != nil {
		return err
	}
	m.raw = make([]string, m.n)
	err = ins(`INSERT INTO agent_tokens (id, agent_id, token_hash, token_prefix, label, capabilities, created_at) VALUES (?, ?, ?, ?, 'mix', ?, ?)`, m.n, func(i int) ([]any, error) {
		t := m.tokens[i]
		a := m.agents[t.agent]
		raw, err := token.Generate(token.DefaultPrefix, mixSlug(a.id))
		if err != nil {
			return nil, err
		}
		m.raw[i] = raw
		var caps any
		if t.caps != nil {
			b, err := json.Marshal(*t.caps)
			if err != nil {
				return nil, err
			}
			caps = string(b)
		}
		return []any{t.id, a.id, token.Hash(raw), token.Hint(raw), caps, now}, nil
	})
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return err
	}

	// Read a few back the way the server will.
	st, err = store.Open(ctx, url)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, i := range []int{0, m.n / 2, m.n - 1} {
		res, err := st.ResolveTokenHash(ctx, token.Hash(m.raw[i]))
		if err != nil {
			return fmt.Errorf("seeded token %d does not resolve: %w", i, err)
		}
		t := m.tokens[i]
		a := m.agents[t.agent]
		if res.Token.ID != t.id || res.Agent.ID != a.id || res.Owner == nil || res.Owner.ID != m.users[a.owner].id ||
			(res.Token.Capabilities == nil) != (t.caps == nil) || (res.Agent.ToolPolicy == nil) != (a.policy == nil) {
			return fmt.Errorf("seeded token %d resolves to other facts: %+v", i, res)
		}
	}
	return nil
}

func mixSlug(agentID int64) string { return "mix-agent-" + strconv.FormatInt(agentID, 10) }

// The three targets of one sequence (seed).

func (m *mixWorld) ourTarget(base string, seed uint64) target {
	t := target{name: "agentauthz (mix)", url: base + "/v1/authorize", header: http.Header{"Content-Type": {"application/json"}}}
	t.auth = func(w int, i uint64) string {
		tok, _, _ := m.question(seed, w, i)
		return m.raw[tok]
	}
	t.body = func(w int, i uint64) []byte {
		_, act, tool := m.question(seed, w, i)
		b := make([]byte, 0, 64)
		b = append(append(b, `{"action":"`...), m.actions[act]...)
		if tool >= 0 {
			b = append(append(b, `","tool":"`...), mixTools[tool]...)
		}
		return append(b, `"}`...)
	}
	t.check = func(w int, i uint64, body []byte) bool {
		want := m.allow(m.question(seed, w, i))
		return bytes.HasPrefix(body, []byte(`{"allow":`+strconv.FormatBool(want)))
	}
	return t
}

// opaTarget is OPA's Data API; minimal selects the hand-written policy.
func (m *mixWorld) opaTarget(base string, seed uint64, minimal bool) target {
	t := target{name: "opa, our bundle (mix)", url: base + "/v1/data/agentauthz/main/decision", header: http.Header{"Content-Type": {"application/json"}}}
	prefix, yes, no := m.ourPrefix, []byte(`"allow":true`), []byte(`"allow":false`)
	if minimal {
		t.name, t.url = "opa, minimal policy (mix)", base+"/v1/data/minimal/allow"
		prefix, yes, no = m.minPrefix, []byte(`"result":true`), []byte(`"result":false`)
	}
	t.body = func(w int, i uint64) []byte {
		tok, act, tool := m.question(seed, w, i)
		p := prefix[tok]
		b := make([]byte, 0, len(p)+64)
		b = append(append(append(b, p...), m.actions[act]...), '"')
		if tool >= 0 {
			b = append(append(append(b, `,"tool":"`...), mixTools[tool]...), '"')
		}
		return append(b, "}}"...)
	}
	t.check = func(w int, i uint64, body []byte) bool {
		if m.allow(m.question(seed, w, i)) {
			return bytes.Contains(body, yes)
		}
		return bytes.Contains(body, no)
	}
	return t
}

// ---- Reading what happened inside the servers. ----

// counters is a scrape of agentauthz's /metrics (series -> value), plus the
// process's CPU time from /proc.
type counters struct {
	series map[string]float64
	cpu    time.Duration
}

func scrape(base string, pid int) counters {
	c := counters{series: map[string]float64{}, cpu: procCPU(pid)}
	if base == "" {
		return c
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return c
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	for _, line := range strings.Split(buf.String(), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			c.series[line[:i]] = v
		}
	}
	return c
}

// sum adds the series of metric name whose labels contain every want.
func (c counters) sum(name string, want ...string) float64 {
	total := 0.0
	for k, v := range c.series {
		if !strings.HasPrefix(k, name) || (len(k) > len(name) && k[len(name)] != '{') {
			continue
		}
		ok := true
		for _, w := range want {
			if !strings.Contains(k, w) {
				ok = false
				break
			}
		}
		if ok {
			total += v
		}
	}
	return total
}

// procCPU is the user+system CPU time of pid (Linux /proc; 0 elsewhere).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	// after the command: state is field 0, utime 11, stime 12 (clock ticks, 100 Hz)
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	sy, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(ut+sy) * 10 * time.Millisecond
}

// procRSS is the resident set of pid in MiB.
func procRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// mixResult is one measured (server, size, concurrency).
type mixResult struct {
	result
	tokens      int
	cpuPerReq   time.Duration
	before, end counters
}

// paths renders which path answered agentauthz's requests in the window.
func (r mixResult) paths() string {
	d := func(name string, want ...string) float64 {
		return r.end.sum(name, want...) - r.before.sum(name, want...)
	}
	memo := d("agentauthz_decisions_total", `ability="authorize"`, `source="memo"`)
	eval := d("agentauthz_decisions_total", `ability="authorize"`, `source="eval"`)
	allow := d("agentauthz_decisions_total", `ability="authorize"`, `result="allow"`)
	hit := d("agentauthz_token_lookups_total", `cache="hit"`)
	miss := d("agentauthz_token_lookups_total", `cache="miss"`)
	bad := hit + miss - d("agentauthz_token_lookups_total", `outcome="ok"`)
	gcs := d("go_gc_duration_seconds_count")
	dec, look := memo+eval, hit+miss
	if dec == 0 || look == 0 {
		return "no decisions counted (/metrics unavailable?)"
	}
	s := fmt.Sprintf("decisions %.0f: memo %.1f%%, fresh eval %.1f%% (allow %.0f%%); token lookups %.0f: cache hit %.1f%%, store lookup %.1f%% (%.0f/s)",
		dec, 100*memo/dec, 100*eval/dec, 100*allow/dec, look, 100*hit/look, 100*miss/look, miss/r.window.Seconds())
	if bad > 0 {
		s += fmt.Sprintf(", %.0f failed", bad)
	}
	return s + fmt.Sprintf("; GC %.1f/s", gcs/r.window.Seconds())
}

// driveMeasured drives t and records the server's CPU (and counters when
// base is set) over exactly the measured window.
func driveMeasured(ctx context.Context, t target, p *proc, metricsBase string, tokens, conc int, warmup, duration time.Duration) mixResult {
	var before, end counters
	pid := p.cmd.Process.Pid
	t.window = func(begin bool) {
		if begin {
			before = scrape(metricsBase, pid)
		} else {
			end = scrape(metricsBase, pid)
		}
	}
	r := drive(ctx, t, conc, warmup, duration)
	out := mixResult{result: r, tokens: tokens, before: before, end: end}
	if r.requests > 0 {
		out.cpuPerReq = (end.cpu - before.cpu) / time.Duration(r.requests)
	}
	return out
}

// verifyMix asks every server a sample of questions one by one and
// compares each answer with the expected decision, so a seed, input or
// policy mismatch fails before anything is measured.
func verifyMix(ts []target, n int) error {
	client := &http.Client{Timeout: 10 * time.Second}
	for _, t := range ts {
		for i := range uint64(n) {
			if err := once(client, t, 0, i); err != nil {
				return fmt.Errorf("%s, question %d: %w", t.name, i, err)
			}
		}
	}
	return nil
}

// ---- The run. ----

// mixSummary is what the last lines need.
type mixSummary struct {
	lines  []string
	lowest float64 // lowest ratio over sizes, concurrencies and both OPA setups
	failed bool
}

func runMix(ctx context.Context, cfg config, ps *procs, opaBin, bundleDir string) (mixSummary, []mixResult, error) {
	var sum mixSummary
	conf, err := readBundleConfig(cfg.root)
	if err != nil {
		return sum, nil, err
	}
	minDir := filepath.Join(cfg.work, "minimal-bundle")
	if err := stageMinimal(conf, minDir); err != nil {
		return sum, nil, err
	}
	opaOurs, err := ps.startOPA(ctx, cfg, "opa-mix", opaBin, bundleDir)
	if err != nil {
		return sum, nil, err
	}
	defer opaOurs.stop()
	opaMin, err := ps.startOPA(ctx, cfg, "opa-minimal", opaBin, minDir)
	if err != nil {
		return sum, nil, err
	}
	defer opaMin.stop()

	var all []mixResult
	first := true
	bySize := map[int]map[int]mixResult{} // agentauthz results: tokens -> conc -> result
	for si, n := range cfg.mixSizes {
		if ctx.Err() != nil {
			return sum, nil, ctx.Err()
		}
		w, err := buildMix(conf, n, cfg.mixPerAgent, cfg.mixDist, uint64(n)*7919+1)
		if err != nil {
			return sum, nil, err
		}
		t0 := time.Now()
		dbPath := filepath.Join(cfg.work, fmt.Sprintf("mix-%d.db", n))
		if err := w.seedStore(ctx, dbPath); err != nil {
			return sum, nil, fmt.Errorf("seed %d tokens: %w", n, err)
		}
		seedTime := time.Since(t0)
		// Sized as the README tells an operator: the token cache holds the
		// working set (every token is in use here), the TTL is the default.
		cacheSize := max(credential.DefaultCacheSize, n*5/4)
		ours, err := ps.startAgentauthz(ctx, cfg, fmt.Sprintf("agentauthz-mix-%d", n), "sqlite:"+dbPath, fmt.Sprintf("--cache-size=%d", cacheSize), fmt.Sprintf("--memo-size=%d", cfg.mixMemoSize))
		if err != nil {
			return sum, nil, err
		}
		distinct := float64(n) * float64(w.questionsPerToken())
		head := fmt.Sprintf("mix @%d tokens: %d agents, %d users, seeded straight into SQLite in %s; %d actions (%d known + 1 unknown) × (no tool or 1 of %d tools) = %d questions per token, %.3g distinct (--memo-size=%d); tokens drawn %s; agentauthz with the default --cache-ttl and --cache-size=%d (the working set), --touch-interval=5s",
			n, len(w.agents), len(w.users), seedTime.Round(time.Millisecond), len(w.actions), len(w.actions)-1, len(mixTools),
			w.questionsPerToken(), distinct, cfg.mixMemoSize, w.distLabel(), cacheSize)
		fmt.Fprintf(os.Stderr, "load: mix @%d tokens seeded in %s; measuring\n", n, seedTime.Round(time.Millisecond))
		sum.lines = append(sum.lines, head)
		seed := uint64(si+1) << 32
		if err := verifyMix([]target{w.ourTarget(ours.base, seed), w.opaTarget(opaOurs.base, seed, false), w.opaTarget(opaMin.base, seed, true)}, 300); err != nil {
			ours.stop()
			return sum, nil, fmt.Errorf("mix @%d tokens: the servers do not answer as expected: %w", n, err)
		}
		if cfg.mixSettle > 0 {
			line, failed := settleMix(ctx, cfg, w, ours, n, uint64(si+1)<<32|0xffff<<16)
			sum.lines = append(sum.lines, line)
			sum.failed = sum.failed || failed
		}
		// agentauthz's windows run back to back right after the settle, so
		// its cache does not age while OPA's servers (which hold no state
		// that expires) are measured; then OPA's, with the same questions.
		bySize[n] = map[int]mixResult{}
		seeds := make([]uint64, len(cfg.concurrency))
		for ci, c := range cfg.concurrency {
			seeds[ci] = uint64(si+1)<<32 | uint64(ci+1)<<16
			bySize[n][c] = driveMeasured(ctx, w.ourTarget(ours.base, seeds[ci]), ours, ours.base, n, c, cfg.warmup, cfg.duration)
		}
		// The profile window follows at once too, on the same warm cache.
		var prof []string
		if cfg.profile != "" {
			var err error
			if prof, err = profileAgentauthz(ctx, cfg, w, ours, n); err != nil {
				prof = []string{"profile: " + err.Error()}
			}
		}
		line := fmt.Sprintf("mix @%d tokens: agentauthz RSS %.0f MiB at the end", n, procRSS(ours.cmd.Process.Pid))
		for ci, c := range cfg.concurrency {
			a := bySize[n][c]
			o := driveMeasured(ctx, w.opaTarget(opaOurs.base, seeds[ci], false), opaOurs, "", n, c, cfg.warmup, cfg.duration)
			mn := driveMeasured(ctx, w.opaTarget(opaMin.base, seeds[ci], true), opaMin, "", n, c, cfg.warmup, cfg.duration)
			all = append(all, a, o, mn)
			line := fmt.Sprintf("mix @%d tokens c%d agentauthz paths: %s", n, c, a.paths())
			if w.cdf == nil {
				// the tokens a uniform draw touches within one cache TTL
				// (the default 60 s) and one last_used_at flush interval
				// (5 s), and the hit share of a settled cache at this rate:
				// each entry lives 0.95 TTL on average from the miss that
				// filled it (the TTL less up to a tenth of it, at random),
				// so a token asked λ times a second misses once per
				// 1 + λ·0.95·TTL requests.
				lt := a.rps() * credential.MeanEntryLife(serverCacheTTL).Seconds() / float64(n)
				line += fmt.Sprintf("; working set ≈ %.0f tokens per %s TTL, %.0f per 5 s flush (token cache %d); a settled cache would answer ≈ %.1f%%",
					workingSet(n, a.rps(), serverCacheTTL), serverCacheTTL, workingSet(n, a.rps(), 5*time.Second), cacheSize, 100*lt/(1+lt))
			}
			sum.lines = append(sum.lines, line)
			ro, rm := a.rps()/o.rps(), a.rps()/mn.rps()
			line = fmt.Sprintf("ratio agentauthz/opa (mix) @%d tokens c%d: %.2f vs our bundle, %.2f vs minimal policy (p99 ours %s vs %s, %s; CPU/request ours %s vs %s, %s)",
				n, c, ro, rm, ms(a.p99), ms(o.p99), ms(mn.p99), us(a.cpuPerReq), us(o.cpuPerReq), us(mn.cpuPerReq))
			sum.lines = append(sum.lines, line)
			for _, r := range []float64{ro, rm} {
				if first || r < sum.lowest {
					sum.lowest, first = r, false
				}
			}
		}
		sum.lines = append(sum.lines, prof...)
		ours.stop()
		_ = os.Remove(dbPath)
		sum.lines = append(sum.lines, line)
	}
	sum.lines = append(sum.lines, mixTargets(cfg, bySize, all)...)
	for _, r := range all {
		if r.errors > 0 || r.requests == 0 {
			sum.failed = true
		}
	}
	return sum, all, nil
}

func (m *mixWorld) distLabel() string {
	if m.cdf != nil {
		return "Zipf-like over tokens (P(k) ∝ 1/k), actions and tools uniform"
	}
	return "uniformly (tokens, actions and tools)"
}

// mixTargets checks the targets against the measured numbers.
func mixTargets(cfg config, bySize map[int]map[int]mixResult, all []mixResult) []string {
	var out []string
	find := func(server string, n, c int) (mixResult, bool) {
		for _, r := range all {
			if r.server == server && r.tokens == n && r.conc == c {
				return r, true
			}
		}
		return mixResult{}, false
	}
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	if _, ok := bySize[10000]; ok {
		for _, c := range cfg.concurrency {
			a, _ := find("agentauthz (mix)", 10000, c)
			for _, name := range []string{"opa, our bundle (mix)", "opa, minimal policy (mix)"} {
				o, _ := find(name, 10000, c)
				r := a.rps() / o.rps()
				out = append(out, fmt.Sprintf("target ≥ 2.5× %s at 10000 tokens c%d: %.2f× %s; p99 %s vs %s %s",
					strings.TrimSuffix(name, " (mix)"), c, r, mark(r >= 2.5), ms(a.p99), ms(o.p99), mark(a.p99 <= o.p99)))
			}
		}
	}
	small, large := cfg.mixSizes[0], cfg.mixSizes[len(cfg.mixSizes)-1]
	if len(cfg.mixSizes) > 1 {
		for _, c := range cfg.concurrency {
			s, l := bySize[small][c], bySize[large][c]
			r := l.rps() / s.rps()
			line := fmt.Sprintf("target throughput at %d tokens within 20%% of %d (c%d): %.0f vs %.0f req/s = %.2f %s",
				large, small, c, l.rps(), s.rps(), r, mark(r >= 0.8))
			// OPA's server does the same work per request at every size
			// (the same bundle, an input of the same shape), so dividing by
			// its own change between the sizes takes out much of the
			// machine's drift (its windows run some 20 s after ours).
			oSmall, okS := find("opa, our bundle (mix)", small, c)
			oLarge, okL := find("opa, our bundle (mix)", large, c)
			if okS && okL && oSmall.rps() > 0 && oLarge.rps() > 0 {
				line += fmt.Sprintf(" (%.2f normalised by OPA's own change between the sizes: its server on our bundle ran %.0f vs %.0f req/s)",
					r/(oLarge.rps()/oSmall.rps()), oLarge.rps(), oSmall.rps())
			}
			out = append(out, line)
		}
	}
	return out
}

// stageMinimal writes the minimal policy and its data (derived from our
// bundle's roles and actions, the implies-all capability expanded) as a
// bundle directory.
func stageMinimal(conf bundleConfig, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var caps []string
	actions := map[string]string{}
	for name, a := range conf.Actions {
		if a.Capability != nil && *a.Capability != "" {
			actions[name] = *a.Capability
			caps = append(caps, *a.Capability)
		}
	}
	roles := map[string]map[string]bool{}
	for r, held := range conf.Roles {
		rs := map[string]bool{}
		for c, ok := range held {
			if ok {
				rs[c] = true
			}
		}
		if conf.Settings.ImpliesAll != "" && held[conf.Settings.ImpliesAll] {
			for _, c := range caps {
				rs[c] = true
			}
		}
		roles[r] = rs
	}
	data, err := json.Marshal(map[string]any{"minimal": map[string]any{"roles": roles, "actions": actions}})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "data.json"), data, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "minimal.rego"), minimalRego, 0o644)
}

func printMixTable(rs []mixResult) {
	fmt.Printf("\n%-28s %7s %5s %10s %10s %10s %12s %7s\n", "server (mix)", "tokens", "conc", "req/s", "p50", "p99", "CPU/request", "errors")
	for _, r := range rs {
		fmt.Printf("%-28s %7d %5d %10.0f %10s %10s %12s %7d\n", strings.TrimSuffix(r.server, " (mix)"), r.tokens, r.conc, r.rps(), ms(r.p50), ms(r.p99), us(r.cpuPerReq), r.errors)
	}
	fmt.Println()
}

func us(d time.Duration) string {
	return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
}

// workingSet estimates the distinct tokens a uniform draw touches in window
// at rps requests per second: n·(1 − e^(−rps·window/n)).
func workingSet(n int, rps float64, window time.Duration) float64 {
	return float64(n) * (1 - math.Exp(-rps*window.Seconds()/float64(n)))
}

// settleMix drives agentauthz unmeasured for --mix-settle, so that the
// windows after it see a token cache that has served for a TTL, near the
// steady state of a long-running server (each window's line gives that
// state's hit share to compare), not the cold one of a fresh start. It
// returns the line describing it and whether it failed.
func settleMix(ctx context.Context, cfg config, w *mixWorld, ours *proc, n int, seed uint64) (string, bool) {
	c := cfg.concurrency[0]
	fmt.Fprintf(os.Stderr, "load: mix @%d tokens: settling for %s at c%d\n", n, cfg.mixSettle, c)
	r := driveMeasured(ctx, w.ourTarget(ours.base, seed), ours, ours.base, n, c, 0, cfg.mixSettle)
	line := fmt.Sprintf("mix @%d tokens: agentauthz settled under %s of the same load at c%d before measuring (%s)", n, cfg.mixSettle, c, r.paths())
	switch {
	case r.errors > 0:
		return line + fmt.Sprintf("; FAILED: %d errors, first: %s", r.errors, r.firstErr), true
	case r.requests == 0:
		return line + "; FAILED: no request completed", true
	}
	return line, false
}
