package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// agentauthz serves no /debug/pprof, so the mix is profiled from outside
// with Linux perf (frame-pointer call graphs; Go keeps frame pointers), in an
// extra window after the measured ones so the numbers above are unprofiled.

// profileBuckets name where the CPU goes. perf's call chains stop at the
// kernel's perf_event_max_stack (127 frames) and Rego's evaluation recurses
// deeper, so shares on the root side of a deep stack (HTTP serving, Decide)
// come out too low: the buckets use either a symbol's inclusive share where
// the stack below it is shallow (incl: the largest "children" share of a
// matching symbol) or the own time of every symbol with a prefix (self).
var profileBuckets = []struct {
	label, match string
	self         bool
}{
	{"Rego evaluation, OPA's own code (github.com/open-policy-agent/…, self)", "github.com/open-policy-agent/", true},
	{"stack growth under deep evaluation (runtime.newstack → copystack)", "runtime.newstack", false},
	{"GC background marking (runtime.gcBgMarkWorker)", "runtime.gcBgMarkWorker", false},
	{"GC assists in allocating goroutines (runtime.gcAssistAlloc)", "runtime.gcAssistAlloc", false},
	{"allocation (runtime.mallocgc, assists included)", "runtime.mallocgc", false},
	{"token lookup (credential.(*Resolver).Lookup)", "internal/credential.(*Resolver).Lookup", false},
	{"  of which store lookup by hash (store.(*SQL).ResolveTokenHash)", "internal/store.(*SQL).ResolveTokenHash", false},
	{"last_used_at flush (store.(*SQL).TouchTokens)", "internal/store.(*SQL).TouchTokens", false},
	{"SQLite, own code (modernc.org/…, self)", "modernc.org/", true},
	{"memo key (authz.(*facts).key)", "internal/authz.(*facts).key", false},
	{"input document (authz.(*facts).input)", "internal/authz.(*facts).input", false},
	{"request/response JSON (encoding/json, strictjson, render; self)", "encoding/json", true},
	{"SHA-256 of the token (crypto/sha256, self)", "crypto/", true},
}

var perfLine = regexp.MustCompile(`^\s*([\d.]+)%\s+([\d.]+)%\s+\[(.)\]\s+(.+?)\s*$`)

// profileAgentauthz drives agentauthz once more at the first concurrency
// with perf recording it for the window, and summarises where its CPU went.
func profileAgentauthz(ctx context.Context, cfg config, w *mixWorld, p *proc, n int) ([]string, error) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return nil, fmt.Errorf("skipped: agentauthz exposes no /debug/pprof and perf is not installed (apt-get install linux-perf)")
	}
	if err := os.MkdirAll(cfg.profile, 0o755); err != nil {
		return nil, err
	}
	data := filepath.Join(cfg.profile, fmt.Sprintf("agentauthz-mix-%d.perf.data", n))
	c := cfg.concurrency[0]
	t := w.ourTarget(p.base, uint64(0xbeef)<<32|uint64(n))
	var rec *exec.Cmd
	var recErr bytes.Buffer
	t.window = func(begin bool) {
		if !begin {
			return
		}
		rec = exec.CommandContext(ctx, perf, "record", "-q", "-F", "499", "-g", "-p", strconv.Itoa(p.cmd.Process.Pid),
			"-o", data, "--", "sleep", strconv.FormatFloat(cfg.duration.Seconds(), 'f', 1, 64))
		rec.Stderr = &recErr
		if err := rec.Start(); err != nil {
			rec = nil
			recErr.WriteString(err.Error())
		}
	}
	r := drive(ctx, t, c, cfg.warmup, cfg.duration)
	if rec == nil {
		return nil, fmt.Errorf("perf record did not start: %s", recErr.String())
	}
	if err := rec.Wait(); err != nil {
		return nil, fmt.Errorf("perf record: %v: %s", err, strings.TrimSpace(recErr.String()))
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(rctx, perf, "report", "-i", data, "--stdio", "--children", "--sort", "symbol",
		"-g", "none", "--percent-limit", "0.05").Output()
	if err != nil {
		return nil, fmt.Errorf("perf report: %v", err)
	}
	type sym struct {
		children, self float64
		kernel         bool
		name           string
	}
	var syms []sym
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := perfLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ch, _ := strconv.ParseFloat(m[1], 64)
		se, _ := strconv.ParseFloat(m[2], 64)
		name, _, _ := strings.Cut(m[4], "  ") // perf pads further columns
		syms = append(syms, sym{ch, se, m[3] == "k", name})
	}
	if len(syms) == 0 {
		return nil, fmt.Errorf("perf report printed no symbols (%s)", data)
	}
	lines := []string{fmt.Sprintf("profile @%d tokens c%d (perf, 499 Hz, %s window at %.0f req/s; %s): where agentauthz's CPU went",
		n, c, cfg.duration, r.rps(), data)}
	kernel := 0.0
	for _, s := range syms {
		if s.kernel {
			kernel += s.self
		}
	}
	for _, b := range profileBuckets {
		share := 0.0
		for _, s := range syms {
			switch {
			case b.self && strings.HasPrefix(s.name, b.match):
				share += s.self
			case !b.self && strings.Contains(s.name, b.match) && s.children > share:
				share = s.children
			}
		}
		lines = append(lines, fmt.Sprintf("  %5.1f%%  %s", share, b.label))
	}
	lines = append(lines, fmt.Sprintf("  %5.1f%%  kernel (self)", kernel))
	sort.Slice(syms, func(i, j int) bool { return syms[i].self > syms[j].self })
	lines = append(lines, "  top symbols by own CPU:")
	for i := 0; i < len(syms) && i < 15; i++ {
		lines = append(lines, fmt.Sprintf("  %5.1f%%  %s", syms[i].self, shortSym(syms[i].name)))
	}
	return lines, nil
}

// shortSym drops the module path of a Go symbol.
func shortSym(s string) string {
	for _, p := range []string{"github.com/agentauthz/agentauthz/internal/", "github.com/open-policy-agent/opa/v1/", "github.com/"} {
		if strings.HasPrefix(s, p) {
			return strings.TrimPrefix(s, p)
		}
	}
	return s
}
