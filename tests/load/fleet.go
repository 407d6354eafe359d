package main

// The fleet (--fleet): three replicas on one PostgreSQL, the bound on how
// late a revocation reaches the other replicas, measured under load. N
// tokens are seeded straight into the store (its Go API, not the CLI), the
// replicas cache tokens for an hour, load runs on all three, and
// revocations are made through random replicas (a token revoking itself)
// and some by the CLI; for each, every other replica is polled with the
// revoked token in a fast loop, and the time from the writer's answer (the
// HTTP response, or the CLI's exit: the commit precedes both) to the first
// refusal is recorded. The cached path's throughput is measured quiet,
// while revoking, and, for the cached/uncached ratio, with the cache off
// (--cache-ttl=0, no listener), all in the same run.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/store"
	"github.com/agentauthz/agentauthz/internal/token"
)

// fleetReplicas is the number of replicas; fleetPollLimit how long a
// replica may keep accepting a revoked token before the run fails.
const (
	fleetReplicas  = 3
	fleetPollLimit = 5 * time.Second
)

// fleetToken is one seeded token.
type fleetToken struct {
	raw  string
	id   int64
	slug string
}

// fleetWorld is the seeded store: load tokens and, apart, the victims
// that get revoked (never used by the load).
type fleetWorld struct {
	load, victims []fleetToken
}

// seedFleet creates one editor, an agent per 20 tokens (every tool
// allowed) and cfg.fleetTokens tokens plus the victims, through the store.
func seedFleet(ctx context.Context, cfg config, dbURL string) (fleetWorld, error) {
	var w fleetWorld
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		return w, err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return w, err
	}
	owner, err := st.CreateUser(ctx, model.User{Login: "fleet-owner", Roles: []string{"editor"}})
	if err != nil {
		return w, err
	}
	var agent model.Agent
	for i := range cfg.fleetTokens + cfg.fleetRevocations {
		if i%20 == 0 {
			agent, err = st.CreateAgent(ctx, model.Agent{Slug: "fleet-" + strconv.Itoa(i/20), OwnerID: owner.ID})
			if err != nil {
				return w, err
			}
		}
		raw, err := token.Generate(token.DefaultPrefix, agent.Slug)
		if err != nil {
			return w, err
		}
		t, err := st.CreateToken(ctx, model.Token{AgentID: agent.ID, Hash: token.Hash(raw), Prefix: token.Hint(raw), Label: "fleet"})
		if err != nil {
			return w, err
		}
		ft := fleetToken{raw: raw, id: t.ID, slug: agent.Slug}
		if i < cfg.fleetTokens {
			w.load = append(w.load, ft)
		} else {
			w.victims = append(w.victims, ft)
		}
	}
	return w, nil
}

// fleetLoad is the load on one replica: POST /v1/authorize with load
// tokens drawn uniformly, every answer an allow.
func fleetLoad(base string, w fleetWorld, replica int) target {
	body := []byte(`{"action":"use_tools","tool":"web_search"}`)
	t := target{name: "replica " + string(rune('A'+replica)), url: base + "/v1/authorize", header: http.Header{"Content-Type": {"application/json"}}}
	t.body = func(int, uint64) []byte { return body }
	t.auth = func(wk int, i uint64) string {
		return w.load[splitmix64(uint64(replica)<<56^uint64(wk)<<40^i)%uint64(len(w.load))].raw
	}
	t.ok = func(b []byte) bool { return bytes.HasPrefix(b, []byte(`{"allow":true`)) }
	return t
}

// driveFleet drives the first --concurrency's workers spread evenly over
// the replicas and returns the total req/s and the worst
// replica's p99; during runs while the window is open.
func driveFleet(ctx context.Context, cfg config, bases []string, w fleetWorld, during func(context.Context)) (rps float64, p99 time.Duration, err error) {
	conc := cfg.concurrency[0]
	results := make([]result, len(bases))
	var wg sync.WaitGroup
	for i, base := range bases {
		n := conc / len(bases)
		if i < conc%len(bases) {
			n++
		}
		t := fleetLoad(base, w, i)
		if i == 0 && during != nil {
			dctx, cancel := context.WithCancel(ctx)
			var dwg sync.WaitGroup
			t.window = func(begin bool) {
				if begin {
					dwg.Add(1)
					go func() { defer dwg.Done(); during(dctx) }()
					return
				}
				dwg.Wait() // the revocations finish inside the window
				cancel()
			}
		}
		wg.Add(1)
		go func(i int, t target, n int) {
			defer wg.Done()
			results[i] = drive(ctx, t, n, cfg.warmup, cfg.duration)
		}(i, t, n)
	}
	wg.Wait()
	for _, r := range results {
		if r.errors > 0 {
			return 0, 0, fmt.Errorf("%s: %d failed requests (first: %s)", r.server, r.errors, r.firstErr)
		}
		rps += r.rps()
		p99 = max(p99, r.p99)
	}
	return rps, p99, nil
}

// revocation is one measured revocation: who wrote it and how late each
// other replica refused the token after the writer answered (negative:
// refused before the answer arrived) and after the revocation was sent.
// The commit lies between the two, so late is a lower bound of the
// commit-to-refusal latency and fromSent an upper one.
type revocation struct {
	writer   string
	late     []time.Duration
	fromSent []time.Duration
}

// revokeAll revokes every victim, spread evenly over the window, each
// through a random replica or (a share of them) the CLI, and measures the
// other replicas' refusals.
func revokeAll(ctx context.Context, cfg config, bases []string, dbURL string, w fleetWorld, rng *rand.Rand) ([]revocation, error) {
	gap := cfg.duration / time.Duration(len(w.victims)+1)
	out := make([]revocation, len(w.victims))
	errs := make([]error, len(w.victims))
	var wg sync.WaitGroup
	tick := time.NewTicker(gap)
	defer tick.Stop()
	// Keep-alive connections enough for every poller at once.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for i, v := range w.victims {
		writer := rng.IntN(len(bases))
		if rng.Float64() < cfg.fleetCLIShare {
			writer = -1
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = revokeOne(ctx, cfg, client, bases, dbURL, v, writer)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// revokeOne revokes v through replica writer (-1: the CLI) while every
// other replica is polled with v until it refuses it.
func revokeOne(ctx context.Context, cfg config, client *http.Client, bases []string, dbURL string, v fleetToken, writer int) (revocation, error) {
	rev := revocation{writer: "cli"}
	var others []string
	for i, b := range bases {
		if i != writer {
			others = append(others, b)
		}
	}
	refused := make([]time.Time, len(others))
	perr := make([]error, len(others))
	pctx, cancel := context.WithTimeout(ctx, fleetPollLimit)
	defer cancel()
	var wg sync.WaitGroup
	for i, b := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			refused[i], perr[i] = pollRefused(pctx, client, b, v.raw)
		}()
	}
	var err error
	sent := time.Now()
	if writer < 0 {
		_, err = runCLI(ctx, cfg.bin, dbURL, "agents", "token", "revoke", v.slug, strconv.FormatInt(v.id, 10))
	} else {
		rev.writer = string(rune('A' + writer))
		err = selfRevoke(ctx, client, bases[writer], v)
	}
	answered := time.Now()
	wg.Wait()
	if err != nil {
		return rev, fmt.Errorf("revoke token %d through %s: %w", v.id, rev.writer, err)
	}
	for i, t := range refused {
		if perr[i] != nil {
			return rev, fmt.Errorf("token %d revoked through %s: %s: %w", v.id, rev.writer, others[i], perr[i])
		}
		rev.late = append(rev.late, t.Sub(answered))
		rev.fromSent = append(rev.fromSent, t.Sub(sent))
	}
	return rev, nil
}

// selfRevoke is DELETE /v1/agents/{slug}/tokens/{id} with the token itself
// (a token may always revoke itself).
func selfRevoke(ctx context.Context, client *http.Client, base string, v fleetToken) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, base+"/v1/agents/"+v.slug+"/tokens/"+strconv.FormatInt(v.id, 10), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+v.raw)
	status, body, err := call(client, req)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("status %d: %.200s", status, body)
	}
	return err
}

// pollRefused asks GET /v1/whoami with raw in a fast loop until it is
// answered 401 and returns when that answer arrived; 200 means not yet.
func pollRefused(ctx context.Context, client *http.Client, base, raw string) (time.Time, error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/whoami", nil)
		if err != nil {
			return time.Time{}, err
		}
		req.Header.Set("Authorization", "Bearer "+raw)
		status, body, err := call(client, req)
		switch {
		case ctx.Err() != nil:
			return time.Time{}, fmt.Errorf("still accepted after %s (--cache-ttl=1h)", fleetPollLimit)
		case err != nil:
			return time.Time{}, err
		case status == http.StatusUnauthorized:
			return time.Now(), nil
		case status != http.StatusOK:
			return time.Time{}, fmt.Errorf("status %d: %.200s", status, body)
		}
		time.Sleep(time.Millisecond)
	}
}

func call(client *http.Client, req *http.Request) (int, []byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// warmFleet resolves every victim on every replica, so each holds all of
// them in its cache before the revocations.
func warmFleet(ctx context.Context, bases []string, w fleetWorld) error {
	client := &http.Client{Timeout: 10 * time.Second}
	for _, b := range bases {
		for _, v := range w.victims {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, b+"/v1/whoami", nil)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+v.raw)
			if status, body, err := call(client, req); err != nil || status != http.StatusOK {
				return fmt.Errorf("warming token %d on %s: %d %.200s %v", v.id, b, status, body, err)
			}
		}
	}
	return nil
}

// startFleet starts the replicas on dbURL with cacheTTL.
func startFleet(ctx context.Context, cfg config, ps *procs, dbURL, cacheTTL string) ([]*proc, []string, error) {
	var list []*proc
	var bases []string
	for i := range fleetReplicas {
		p, err := ps.startAgentauthz(ctx, cfg, fmt.Sprintf("fleet-%c-ttl%s", 'A'+i, cacheTTL), dbURL, "--cache-ttl="+cacheTTL)
		if err != nil {
			return nil, nil, err
		}
		list = append(list, p)
		bases = append(bases, p.base)
	}
	return list, bases, nil
}

// runBaseline measures the quiet cached load on replicas of
// --fleet-baseline-bin (say, a build from before change propagation) on
// the same database; 0 without one.
func runBaseline(ctx context.Context, cfg config, ps *procs, dbURL string, w fleetWorld) (float64, time.Duration, error) {
	if cfg.fleetBaselineBin == "" {
		return 0, 0, nil
	}
	base := cfg
	base.bin = cfg.fleetBaselineBin
	list, bases, err := startFleet(ctx, base, ps, dbURL, "1h")
	if err != nil {
		return 0, 0, err
	}
	rps, p99, err := driveFleet(ctx, cfg, bases, w, nil)
	for _, p := range list {
		p.stop()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("baseline: %w", err)
	}
	return rps, p99, nil
}

// runFleet is --fleet: it prints the throughput table, the ratios and the
// commit-to-refusal latencies.
func runFleet(ctx context.Context, cfg config, ps *procs) error {
	db, err := createPGDatabase(ctx, cfg.pgURL)
	if err != nil {
		return fmt.Errorf("the fleet needs PostgreSQL: %w", err)
	}
	defer db.drop()
	w, err := seedFleet(ctx, cfg, db.url)
	if err != nil {
		return err
	}
	fmt.Printf("fleet: %d replicas on PostgreSQL %s, --cache-ttl=1h; %d load tokens + %d to revoke on %d agents, seeded through the store\n",
		fleetReplicas, store.RedactURL(db.url), len(w.load), len(w.victims), (len(w.load)+len(w.victims)+19)/20)
	fmt.Printf("load average before: %s (the harness, the replicas and PostgreSQL share this machine with whatever else runs)\n", loadAverage())
	fmt.Printf("load: %d workers spread over the replicas, POST /v1/authorize (use_tools web_search, every answer an allow), tokens drawn uniformly; warm-up %s, window %s\n",
		cfg.concurrency[0], cfg.warmup, cfg.duration)

	procsOn, bases, err := startFleet(ctx, cfg, ps, db.url, "1h")
	if err != nil {
		return err
	}
	if err := warmFleet(ctx, bases, w); err != nil {
		return err
	}
	quiet, quietP99, err := driveFleet(ctx, cfg, bases, w, nil)
	if err != nil {
		return fmt.Errorf("quiet: %w", err)
	}
	var revs []revocation
	var revErr error
	rng := rand.New(rand.NewPCG(1, 2))
	busy, busyP99, err := driveFleet(ctx, cfg, bases, w, func(ctx context.Context) {
		revs, revErr = revokeAll(ctx, cfg, bases, db.url, w, rng)
	})
	if err != nil {
		return fmt.Errorf("while revoking: %w", err)
	}
	if revErr != nil {
		return revErr
	}
	var notes []string
	for _, p := range procsOn {
		c := scrape(p.base, p.cmd.Process.Pid)
		notes = append(notes, fmt.Sprintf("%s: %.0f token notifications, listener up %.0f", p.name,
			c.sum("agentauthz_change_notifications_total", `type="token"`), c.sum("agentauthz_change_listener_up")))
		p.stop()
	}

	baseline, baselineP99, err := runBaseline(ctx, cfg, ps, db.url, w)
	if err != nil {
		return err
	}
	procsOff, coldBases, err := startFleet(ctx, cfg, ps, db.url, "0")
	if err != nil {
		return err
	}
	cold, coldP99, err := driveFleet(ctx, cfg, coldBases, w, nil)
	for _, p := range procsOff {
		p.stop() // before the database is dropped
	}
	if err != nil {
		return fmt.Errorf("uncached: %w", err)
	}

	fmt.Printf("\n%-58s %10s %10s\n", "fleet of 3, total", "req/s", "worst p99")
	fmt.Printf("%-58s %10.0f %10s\n", "cached (--cache-ttl=1h, listeners on), quiet", quiet, ms(quietP99))
	fmt.Printf("%-58s %10.0f %10s\n", fmt.Sprintf("cached, while %d revocations propagate", len(revs)), busy, ms(busyP99))
	if baseline > 0 {
		fmt.Printf("%-58s %10.0f %10s\n", "cached, --fleet-baseline-bin (quiet)", baseline, ms(baselineP99))
	}
	fmt.Printf("%-58s %10.0f %10s\n\n", "uncached (--cache-ttl=0: a store query per request)", cold, ms(coldP99))
	for _, n := range notes {
		fmt.Println(n)
	}
	fmt.Printf("load average after: %s\n", loadAverage())
	fmt.Printf("ratio cached while revoking / cached quiet: %.2f\n", busy/quiet)
	fmt.Printf("ratio cached/uncached (fleet, PostgreSQL): %.2f\n", quiet/cold)
	if baseline > 0 {
		fmt.Printf("ratio cached quiet / cached with %s: %.2f (its cached/uncached: %.2f)\n", cfg.fleetBaselineBin, quiet/baseline, baseline/cold)
	}
	return printPropagation(revs)
}

// printPropagation prints the commit-to-refusal latencies: all, and by
// kind of writer.
func printPropagation(revs []revocation) error {
	var all, viaHTTP, viaCLI, fromSent, fromSentHTTP []time.Duration
	early := 0
	for _, r := range revs {
		fromSent = append(fromSent, r.fromSent...)
		if r.writer != "cli" {
			fromSentHTTP = append(fromSentHTTP, r.fromSent...)
		}
		for _, d := range r.late {
			if d < 0 {
				early++
				d = 0
			}
			all = append(all, d)
			if r.writer == "cli" {
				viaCLI = append(viaCLI, d)
			} else {
				viaHTTP = append(viaHTTP, d)
			}
		}
	}
	cli := 0
	for _, r := range revs {
		if r.writer == "cli" {
			cli++
		}
	}
	fmt.Printf("revocations: %d (%d through random replicas, a token revoking itself; %d by the CLI); refusals measured on the other replicas: %d, %d of them before the writer's answer arrived (counted 0)\n",
		len(revs), len(revs)-cli, cli, len(all), early)
	line := func(name string, ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		if len(ds) == 0 {
			fmt.Printf("%s: none\n", name)
			return 0
		}
		fmt.Printf("%s: p50 %s  p99 %s  max %s  (n=%d)\n", name, ms(quantile(ds, 0.5)), ms(quantile(ds, 0.99)), ms(ds[len(ds)-1]), len(ds))
		return quantile(ds, 0.99)
	}
	// The commit happens between the revocation's request and its answer:
	// answer-to-refusal is a lower bound, request-to-refusal an upper one
	// (it includes the writer's own round trip, or the CLI's start-up:
	// opening the store and activating the policy, ~200 ms).
	line("answer-to-refusal, HTTP writer", viaHTTP)
	line("answer-to-refusal, CLI writer", viaCLI)
	line("answer-to-refusal, all (commit-to-refusal, lower bound)", all)
	// The target is checked on the upper bound of the HTTP writers'
	// revocations: a CLI writer's request-to-refusal is mostly its start-up.
	p99 := line("request-to-refusal, HTTP writer (commit-to-refusal, upper bound)", fromSentHTTP)
	line("request-to-refusal, all (a CLI writer's includes its start-up)", fromSent)
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	fmt.Printf("target p99 ≤ 1s: %s; aim p99 ≤ 100ms: %s\n", mark(p99 <= time.Second), mark(p99 <= 100*time.Millisecond))
	if p99 > time.Second {
		return fmt.Errorf("propagation p99 %s is over 1s", p99)
	}
	return nil
}

// loadAverage is the machine's 1, 5 and 15 minute load (Linux; "?"
// elsewhere).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
