// Command load measures POST /v1/authorize of agentauthz against OPA's own
// server deciding the same input with the same policy, on this machine, in
// the same run. It seeds a SQLite store through the CLI, starts both
// servers on 127.0.0.1, drives each with N keep-alive workers (a warm-up,
// then a fixed window), and prints req/s, p50, p99 and the ratios. Optional:
// the cold path (PostgreSQL, token cache off) and a fresh-evaluation path
// that defeats the decision memo. Then the mixed workload (mix.go): many
// tokens, agents, roles, tool policies and capability lists, more distinct
// questions than the default memo holds, at each of --mix-sizes tokens, against
// agentauthz, OPA on our bundle and OPA on a minimal three-ceiling policy.
// With --fleet it measures only the fleet (fleet.go): three replicas on one
// PostgreSQL, how late a revocation reaches the others under load.
// Run from the repository root:
//
//	go run ./tests/load [--bin bin/agentauthz] [--concurrency 16,64] [--warmup 2s] [--duration 8s] [--mix-sizes 1000,10000,100000] [--mix-settle 60s]
//	go run ./tests/load --fleet [--concurrency 16] [--fleet-tokens 2000] [--fleet-revocations 120] [--fleet-cli-share 0.1]
//
// The last lines are `ratio agentauthz/opa: X.XX`, the lower of the
// per-concurrency ratios of the repeated question, and
// `ratio agentauthz/opa (mix): X.XX`, the lowest of the mix's. Load
// generator and servers share the machine's cores: only ratios measured in
// one run mean anything.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/store"
)

// config is the run's flags.
type config struct {
	bin         string
	root        string
	work        string
	concurrency []int
	warmup      time.Duration
	duration    time.Duration
	cold        bool
	fresh       bool
	accessLog   bool
	gogc        string
	pgURL       string
	repeated    bool
	mixSizes    []int
	mixDist     string
	mixPerAgent int
	mixMemoSize int
	mixSettle   time.Duration
	profile     string
	// --fleet (fleet.go)
	fleet            bool
	fleetTokens      int
	fleetRevocations int
	fleetCLIShare    float64
	fleetBaselineBin string
}

func main() {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, cfg)
	stop()
	os.Exit(code)
}

func parseFlags() (config, error) {
	var c config
	var conc, sizes string
	defaultPG := os.Getenv("DATABASE_URL")
	if defaultPG == "" {
		defaultPG = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	flag.StringVar(&c.bin, "bin", "bin/agentauthz", "agentauthz binary (built from ./cmd/agentauthz if missing)")
	flag.StringVar(&conc, "concurrency", "16,64", "comma-separated worker counts (one keep-alive connection each)")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up before each measured window")
	flag.DurationVar(&c.duration, "duration", 8*time.Second, "measured window per server and concurrency")
	flag.BoolVar(&c.cold, "cold", true, "also measure the cold path: PostgreSQL with --cache-ttl=0")
	flag.BoolVar(&c.fresh, "fresh", true, "also measure fresh evaluations (a new tool per request defeats the decision memo)")
	flag.BoolVar(&c.accessLog, "access-log", false, "run agentauthz with its access log on")
	flag.StringVar(&c.gogc, "gogc", "", "GOGC for both servers (default: inherit the environment)")
	flag.StringVar(&c.pgURL, "pg-url", defaultPG, "PostgreSQL maintenance database for the cold path (default $DATABASE_URL or the local server)")
	flag.BoolVar(&c.repeated, "repeated", true, "measure the repeated question (and --fresh, --cold); false runs only the mix")
	flag.StringVar(&sizes, "mix-sizes", "1000,10000,100000", "token counts of the mixed workload, comma-separated; empty skips the mix")
	flag.StringVar(&c.mixDist, "mix-dist", "uniform", "how the mix draws tokens: uniform or zipf")
	flag.IntVar(&c.mixPerAgent, "mix-tokens-per-agent", 20, "tokens per agent in the mix")
	flag.IntVar(&c.mixMemoSize, "mix-memo-size", authz.DefaultMemoSize, "agentauthz's --memo-size in the mix (default: agentauthz's own default; 0: no memo)")
	flag.DurationVar(&c.mixSettle, "mix-settle", 60*time.Second, "unmeasured load on agentauthz before each mix size's windows (one default --cache-ttl: the windows then start in the token cache's second entry life, not yet its long-run steady state, see tests/README.md); 0 measures from a cold cache")
	flag.StringVar(&c.profile, "profile", "", "directory for perf profiles of agentauthz under the mix (an extra window per size); empty: no profile")
	flag.BoolVar(&c.fleet, "fleet", false, "measure only the fleet: three replicas on one PostgreSQL (--pg-url), load at the first --concurrency, revocation-to-refusal latency (fleet.go)")
	flag.IntVar(&c.fleetTokens, "fleet-tokens", 2000, "load tokens seeded for --fleet")
	flag.IntVar(&c.fleetRevocations, "fleet-revocations", 120, "tokens revoked under load by --fleet")
	flag.Float64Var(&c.fleetCLIShare, "fleet-cli-share", 0.1, "share of --fleet revocations made by the CLI instead of a replica")
	flag.StringVar(&c.fleetBaselineBin, "fleet-baseline-bin", "", "another agentauthz binary (e.g. built from before change propagation) whose cached fleet throughput --fleet measures too, for the ratio")
	flag.Parse()
	if c.fleet && (c.fleetTokens < 1 || c.fleetRevocations < 1 || c.fleetCLIShare < 0 || c.fleetCLIShare > 1) {
		return c, fmt.Errorf("--fleet needs --fleet-tokens ≥ 1, --fleet-revocations ≥ 1 and --fleet-cli-share in [0, 1]")
	}
	for _, f := range strings.Split(sizes, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 10_000_000 {
			return c, fmt.Errorf("--mix-sizes: %q is not a token count", f)
		}
		c.mixSizes = append(c.mixSizes, n)
	}
	if c.mixDist != "uniform" && c.mixDist != "zipf" {
		return c, fmt.Errorf("--mix-dist must be uniform or zipf")
	}
	if c.mixPerAgent < 1 {
		return c, fmt.Errorf("--mix-tokens-per-agent must be at least 1")
	}
	if c.mixMemoSize < 0 {
		return c, fmt.Errorf("--mix-memo-size must be 0 (no memo) or more")
	}
	if !c.repeated && len(c.mixSizes) == 0 {
		return c, fmt.Errorf("nothing to measure: --repeated=false and no --mix-sizes")
	}
	for _, f := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 4096 {
			return c, fmt.Errorf("--concurrency: %q is not a worker count", f)
		}
		c.concurrency = append(c.concurrency, n)
	}
	if c.warmup < 0 || c.duration <= 0 || c.duration > 10*time.Minute {
		return c, fmt.Errorf("--warmup must be ≥ 0 and --duration in (0, 10m]")
	}
	if c.mixSettle < 0 || c.mixSettle > 30*time.Minute {
		return c, fmt.Errorf("--mix-settle must be in [0, 30m]")
	}
	root, err := os.Getwd()
	if err != nil {
		return c, err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return c, fmt.Errorf("run from the repository root (no go.mod in %s)", root)
	}
	c.root = root
	return c, nil
}

// run does the whole measurement; every server stops before it returns.
func run(ctx context.Context, cfg config) int {
	work, err := os.MkdirTemp("", "agentauthz-load-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		return 1
	}
	defer os.RemoveAll(work)
	cfg.work = work
	ps := &procs{}
	defer ps.stopAll()
	if err := measure(ctx, cfg, ps); err != nil {
		fmt.Fprintln(os.Stderr, "load: FAILED:", err)
		return 1
	}
	return 0
}

func measure(ctx context.Context, cfg config, ps *procs) error {
	bin, err := agentauthzBinary(ctx, cfg)
	if err != nil {
		return err
	}
	cfg.bin = bin
	if cfg.fleet {
		return runFleet(ctx, cfg, ps)
	}
	opaBin, err := opaBinary(ctx, cfg.root)
	if err != nil {
		return err
	}
	bundle := filepath.Join(cfg.work, "bundle")
	if err := stageBundle(cfg.root, bundle); err != nil {
		return err
	}
	printSetup(cfg)
	repeated := repeatedSummary{skipped: true}
	if cfg.repeated {
		if repeated, err = measureRepeated(ctx, cfg, ps, opaBin, bundle); err != nil {
			return err
		}
	}
	var mix mixSummary
	if len(cfg.mixSizes) > 0 {
		var results []mixResult
		mix, results, err = runMix(ctx, cfg, ps, opaBin, bundle)
		if err != nil {
			return err
		}
		printMixTable(results)
		for _, l := range mix.lines {
			fmt.Println(l)
		}
		for _, r := range results {
			if r.errors > 0 || r.requests == 0 {
				fmt.Printf("ERROR: %s @%d tokens c%d: %d errors, %d ok requests (first: %s)\n", r.server, r.tokens, r.conc, r.errors, r.requests, r.firstErr)
			}
		}
	}
	if repeated.failed || mix.failed {
		return fmt.Errorf("some requests failed; no ratio reported")
	}
	if !repeated.skipped {
		mark := "MISSED"
		if repeated.lowest >= 3 {
			mark = "met"
		}
		fmt.Printf("target repeated-question ratio ≥ 3×: %.2f %s\n", repeated.lowest, mark)
		fmt.Println("the reported ratio is the lowest of the concurrency ratios above (conservative)")
		fmt.Printf("ratio agentauthz/opa: %.2f\n", repeated.lowest)
	}
	if len(cfg.mixSizes) > 0 {
		fmt.Println("the mix ratio is the lowest over its sizes, concurrencies and both OPA setups (our bundle, minimal policy)")
		if cfg.mixMemoSize != authz.DefaultMemoSize {
			fmt.Printf("the mix ran agentauthz with --memo-size=%d, not its default %d\n", cfg.mixMemoSize, authz.DefaultMemoSize)
		}
		fmt.Printf("ratio agentauthz/opa (mix): %.2f\n", mix.lowest)
	}
	return nil
}

// repeatedSummary is what the last lines need from the repeated question.
type repeatedSummary struct {
	skipped, failed bool
	lowest          float64
}

// measureRepeated is the repeated question, the fresh evaluations and the
// cold path; it prints their table and ratios.
func measureRepeated(ctx context.Context, cfg config, ps *procs, opaBin, bundle string) (repeatedSummary, error) {
	var sum repeatedSummary
	sqlite := "sqlite:" + filepath.Join(cfg.work, "load.db")
	s, err := seed(ctx, cfg.bin, sqlite)
	if err != nil {
		return sum, err
	}
	ours, err := ps.startAgentauthz(ctx, cfg, "agentauthz", sqlite, "--cache-ttl=5s")
	if err != nil {
		return sum, err
	}
	opa, err := ps.startOPA(ctx, cfg, "opa", opaBin, bundle)
	if err != nil {
		return sum, err
	}

	ourT, opaT := ourTarget("agentauthz (sqlite, cached)", ours.base, s.Token, false), opaTarget("opa run --server", opa.base, s, false)
	for _, t := range []target{ourT, opaT} {
		body, err := probe(t)
		if err != nil {
			return sum, err
		}
		if !t.ok(body) {
			return sum, fmt.Errorf("%s does not allow the measured request: %s", t.name, body)
		}
		fmt.Printf("check: %s allows use_tools/web_search: %s\n", t.name, bytes.TrimSpace(body))
	}

	var results []result
	ratios := map[int][2]result{}
	for _, c := range cfg.concurrency {
		a := drive(ctx, ourT, c, cfg.warmup, cfg.duration)
		o := drive(ctx, opaT, c, cfg.warmup, cfg.duration)
		results = append(results, a, o)
		ratios[c] = [2]result{a, o}
	}
	fresh := map[int][2]result{}
	if cfg.fresh {
		fa, fo := ourTarget("agentauthz (fresh eval)", ours.base, s.Token, true), opaTarget("opa (fresh input)", opa.base, s, true)
		for _, c := range cfg.concurrency {
			a := drive(ctx, fa, c, cfg.warmup, cfg.duration)
			o := drive(ctx, fo, c, cfg.warmup, cfg.duration)
			results = append(results, a, o)
			fresh[c] = [2]result{a, o}
		}
	}
	memoLine := decisionSources(ours.base)
	ours.stop()
	opa.stop()

	coldLines, coldResults, coldErr := coldPath(ctx, cfg, ps, ratios)
	results = append(results, coldResults...)

	printTable(results)
	fmt.Println(memoLine)
	for _, r := range results {
		if r.errors > 0 || r.requests == 0 {
			fmt.Printf("ERROR: %s @c%d: %d errors, %d ok requests (first: %s)\n", r.server, r.conc, r.errors, r.requests, r.firstErr)
			sum.failed = true
		}
	}
	for _, l := range coldLines {
		fmt.Println(l)
	}
	if cfg.fresh {
		for _, c := range cfg.concurrency {
			a, o := fresh[c][0], fresh[c][1]
			fmt.Printf("ratio agentauthz/opa fresh-eval @c%d: %.2f (p99 ours %s vs opa %s)\n", c, a.rps()/o.rps(), ms(a.p99), ms(o.p99))
		}
	}
	for i, c := range cfg.concurrency {
		a, o := ratios[c][0], ratios[c][1]
		r := a.rps() / o.rps()
		fmt.Printf("ratio agentauthz/opa @c%d: %.2f (p99 ours %s vs opa %s)\n", c, r, ms(a.p99), ms(o.p99))
		if i == 0 || r < sum.lowest {
			sum.lowest = r
		}
	}
	if coldErr != nil {
		sum.failed = true
		fmt.Println("ERROR: cold path:", coldErr)
	}
	return sum, nil
}

// coldPath measures agentauthz on PostgreSQL with the token cache off and
// compares each concurrency with the cached path.
func coldPath(ctx context.Context, cfg config, ps *procs, cached map[int][2]result) (lines []string, out []result, err error) {
	if !cfg.cold {
		return []string{"cold path: skipped (--cold=false)"}, nil, nil
	}
	db, err := createPGDatabase(ctx, cfg.pgURL)
	if err != nil {
		return []string{"cold path: SKIPPED, PostgreSQL unreachable: " + err.Error()}, nil, nil
	}
	defer db.drop()
	s, err := seed(ctx, cfg.bin, db.url)
	if err != nil {
		return nil, nil, err
	}
	srv, err := ps.startAgentauthz(ctx, cfg, "agentauthz-cold", db.url, "--cache-ttl=0")
	if err != nil {
		return nil, nil, err
	}
	defer srv.stop()
	t := ourTarget("agentauthz (postgres, cache-ttl=0)", srv.base, s.Token, false)
	if body, err := probe(t); err != nil || !t.ok(body) {
		return nil, nil, fmt.Errorf("cold server does not allow the measured request: %v %s", err, body)
	}
	lines = append(lines, "cold path: PostgreSQL "+store.RedactURL(db.url)+", --cache-ttl=0 (a token lookup per request)")
	for _, c := range cfg.concurrency {
		r := drive(ctx, t, c, cfg.warmup, cfg.duration)
		out = append(out, r)
		hot := cached[c][0]
		lines = append(lines, fmt.Sprintf("ratio cold/cached @c%d: %.2f (cached is %.2f× cold; target ≤ 2×; p99 cold %s vs cached %s)",
			c, r.rps()/hot.rps(), hot.rps()/r.rps(), ms(r.p99), ms(hot.p99)))
	}
	lines = append(lines, "cold server: "+decisionSources(srv.base))
	return lines, out, nil
}

// ourTarget is POST /v1/authorize with the bearer token; fresh gives every
// request a tool never asked before, so the decision memo cannot answer and
// the policy evaluates (a deny by the tool policy).
func ourTarget(name, base, tok string, fresh bool) target {
	h := http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/json"}}
	t := target{name: name, url: base + "/v1/authorize", header: h}
	if !fresh {
		body := []byte(`{"action":"use_tools","tool":"web_search"}`)
		t.body = func(int, uint64) []byte { return body }
		t.ok = func(b []byte) bool { return bytes.HasPrefix(b, []byte(`{"allow":true`)) }
		return t
	}
	t.body = func(w int, i uint64) []byte {
		return []byte(`{"action":"use_tools","tool":"` + freshTool(w, i) + `"}`)
	}
	t.ok = func(b []byte) bool { return bytes.HasPrefix(b, []byte(`{"allow":false`)) }
	return t
}

// opaTarget is OPA's Data API with the input agentauthz builds.
func opaTarget(name, base string, s seeded, fresh bool) target {
	h := http.Header{"Content-Type": {"application/json"}}
	t := target{name: name, url: base + "/v1/data/agentauthz/main/decision", header: h}
	if !fresh {
		body, _ := json.Marshal(map[string]any{"input": s.opaInput("web_search")})
		t.body = func(int, uint64) []byte { return body }
		t.ok = func(b []byte) bool { return bytes.Contains(b, []byte(`"allow":true`)) }
		return t
	}
	// The input is encoded once and the tool spliced in, so the load
	// generator spends about the same on both servers' bodies.
	tmpl, _ := json.Marshal(map[string]any{"input": s.opaInput("TOOL_PLACEHOLDER")})
	i := bytes.Index(tmpl, []byte("TOOL_PLACEHOLDER"))
	pre, post := tmpl[:i], tmpl[i+len("TOOL_PLACEHOLDER"):]
	t.body = func(w int, n uint64) []byte {
		b := make([]byte, 0, len(tmpl)+16)
		b = append(append(append(b, pre...), freshTool(w, n)...), post...)
		return b
	}
	t.ok = func(b []byte) bool { return bytes.Contains(b, []byte(`"allow":false`)) }
	return t
}

// freshTools numbers fresh tools across every run of the process, so no
// tool name repeats between concurrencies either.
var freshTools atomic.Uint64

func freshTool(int, uint64) string {
	return "t" + strconv.FormatUint(freshTools.Add(1), 36)
}

// agentauthzBinary uses --bin, or builds ./cmd/agentauthz when it is missing.
func agentauthzBinary(ctx context.Context, cfg config) (string, error) {
	if _, err := os.Stat(cfg.bin); err == nil {
		return filepath.Abs(cfg.bin)
	}
	out := filepath.Join(cfg.work, "agentauthz")
	fmt.Printf("building %s (no %s)\n", out, cfg.bin)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/agentauthz")
	cmd.Dir = cfg.root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w: %s", err, b)
	}
	return out, nil
}

// decisionSources reads agentauthz's decision counters (memo or eval) from
// /metrics, to show which path the numbers measured.
func decisionSources(base string) string {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return "decisions: /metrics unavailable: " + err.Error()
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	var parts []string
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, "agentauthz_decisions_total{") && strings.Contains(line, `ability="authorize"`) {
			parts = append(parts, strings.TrimPrefix(line, "agentauthz_decisions_total"))
		}
	}
	return "agentauthz authorize decisions by source: " + strings.Join(parts, " ")
}

func printSetup(cfg config) {
	gogc := "GOGC unset (default 100) for both servers"
	if cfg.gogc != "" {
		gogc = "GOGC=" + cfg.gogc + " for both servers"
	} else if v := os.Getenv("GOGC"); v != "" {
		gogc = "GOGC=" + v + " (inherited) for both servers"
	}
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s; load generator and servers share them: compare ratios, not absolute numbers\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	ttl := "--cache-ttl=5s (the repeated question; the mix: the default, 60s)"
	if !cfg.repeated {
		ttl = "the default --cache-ttl (60s)"
	}
	fmt.Printf("setup: agentauthz serve --access-log=%t, %s, on SQLite; opa run --server (go tool opa, pinned) on the same policies and bundle data; %s\n",
		cfg.accessLog, ttl, gogc)
	if cfg.repeated {
		fmt.Printf("request: POST /v1/authorize {\"action\":\"use_tools\",\"tool\":\"web_search\"} with a bearer token vs POST /v1/data/agentauthz/main/decision with the same input; warm-up %s, window %s\n",
			cfg.warmup, cfg.duration)
	} else {
		fmt.Printf("warm-up %s, window %s per server, size and concurrency\n", cfg.warmup, cfg.duration)
	}
}

func printTable(rs []result) {
	fmt.Printf("\n%-36s %5s %10s %10s %10s %7s\n", "server", "conc", "req/s", "p50", "p99", "errors")
	for _, r := range rs {
		fmt.Printf("%-36s %5d %10.0f %10s %10s %7d\n", r.server, r.conc, r.rps(), ms(r.p50), ms(r.p99), r.errors)
	}
	fmt.Println()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
