package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/store/pgtest"
)

// Freeze test budgets: the server's --request-timeout, how far past it the
// slowest request may answer, the /readyz bound, and how long the server
// may take to recover by itself once the store is back.
const (
	freezeRequestTimeout = 2 * time.Second
	freezeSlack          = time.Second
	freezeReadyBound     = 1500 * time.Millisecond
	freezeRecoveryBound  = 30 * time.Second
)

// A PostgreSQL server that hangs (SIGSTOP on the postmaster and every
// backend: sockets stay open and the kernel keeps acknowledging, as on a
// frozen host) must not hold requests: each is answered by the request
// deadline, never with an allow, /readyz answers 503 within its budget,
// and the server serves again by itself once PostgreSQL resumes. The
// cluster is a private one: the shared server is never frozen.
func TestFreezeAnswersByTheDeadlineAndRecovers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("freezing a cluster finds its processes in /proc")
	}
	if testing.Short() {
		t.Skip("starts a private PostgreSQL cluster")
	}
	pg := pgtest.StartPrivate(t)
	db := pg.URL
	cliJSON(t, db, nil, "users", "create", "chubes", "--role=editor")
	cliJSON(t, db, nil, "agents", "create", "chubes-bot", "--owner=chubes", `--tool-policy={"mode":"allow","tools":["web_search"]}`)
	tok := mintCLI(t, db, "chubes-bot").Token
	srv := startServer(t, db, "--request-timeout="+freezeRequestTimeout.String(), "--cache-ttl=0")
	if d := srv.authorize(t, tok, "use_tools", "web_search"); !d.Allow {
		t.Fatalf("before the freeze: %+v, want allow", d)
	}

	// A client that would wait far longer than the server may take, so a
	// held request shows as a measured latency (or a failure), not a cut.
	client := &http.Client{Timeout: freezeRequestTimeout + 20*time.Second}
	// Warm the pool with concurrent work so frozen connections are pooled
	// ones as well as new ones.
	var warm sync.WaitGroup
	for range 8 {
		warm.Add(1)
		go func() { defer warm.Done(); _ = freezeProbe(client, srv.base, "authorize", tok) }()
	}
	warm.Wait()

	pids, err := pg.Freeze()
	if err != nil {
		t.Fatalf("freeze: %v", err)
	}
	frozenAt := time.Now()
	t.Cleanup(func() { _ = pg.Resume() })
	t.Logf("froze the private cluster: postmaster and %d children (pids %v)", len(pids)-1, pids)

	// Two waves while frozen: the first meets pooled connections, the
	// second a pool whose connections are stuck and dials that hang.
	var results []freezeResult
	for wave := 1; wave <= 2; wave++ {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 20 {
			kind := "authorize"
			if i%5 == 4 {
				kind = "readyz"
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := freezeProbe(client, srv.base, kind, tok)
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	frozenFor := time.Since(frozenAt)

	if err := pg.Resume(); err != nil {
		t.Fatalf("resume: %v", err)
	}
	resumedAt := time.Now()

	var auth, ready []time.Duration
	statuses := map[string]int{}
	for _, r := range results {
		statuses[fmt.Sprintf("%s %d %s", r.kind, r.status, r.code)]++
		switch {
		case r.err != nil:
			t.Errorf("%s: no answer after %s: %v", r.kind, r.latency, r.err)
			continue
		case r.kind == "readyz":
			ready = append(ready, r.latency)
			if r.status != http.StatusServiceUnavailable || r.latency > freezeReadyBound {
				t.Errorf("/readyz while frozen: %d after %s (%s), want 503 within %s", r.status, r.latency, r.body, freezeReadyBound)
			}
		default:
			auth = append(auth, r.latency)
			if bytes.Contains(r.body, []byte(`"allow":true`)) {
				t.Errorf("an allow while the store is frozen: %d %s", r.status, r.body)
			}
			if r.status != http.StatusServiceUnavailable || (r.code != "timeout" && r.code != "unavailable") {
				t.Errorf("authorize while frozen: %d %s, want 503 timeout or unavailable", r.status, r.body)
			}
		}
	}
	ap, rp := percentiles(auth), percentiles(ready)
	t.Logf("frozen for %s; %d requests; outcomes %v", frozenFor.Round(time.Millisecond), len(results), statuses)
	t.Logf("authorize while frozen (n=%d, --request-timeout=%s): p50 %s  p99 %s  max %s", len(auth), freezeRequestTimeout, ap.p50, ap.p99, ap.max)
	t.Logf("/readyz while frozen (n=%d): p50 %s  p99 %s  max %s", len(ready), rp.p50, rp.p99, rp.max)
	if ap.p99 > freezeRequestTimeout+freezeSlack {
		t.Errorf("authorize p99 %s, want at most %s", ap.p99, freezeRequestTimeout+freezeSlack)
	}

	// Recovery: no restart, no help; poll until an allow comes back.
	var recovered time.Duration
	for {
		r := freezeProbe(client, srv.base, "authorize", tok)
		if r.err == nil && r.status == http.StatusOK && bytes.Contains(r.body, []byte(`"allow":true`)) {
			recovered = time.Since(resumedAt)
			break
		}
		if time.Since(resumedAt) > freezeRecoveryBound {
			t.Fatalf("no allow within %s of resuming PostgreSQL; last answer %d %s (%v)", freezeRecoveryBound, r.status, r.body, r.err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var readyAgain time.Duration
	for {
		r := freezeProbe(client, srv.base, "readyz", tok)
		if r.err == nil && r.status == http.StatusOK {
			readyAgain = time.Since(resumedAt)
			break
		}
		if time.Since(resumedAt) > freezeRecoveryBound {
			t.Fatalf("/readyz not 200 within %s of resuming PostgreSQL; last %d %s (%v)", freezeRecoveryBound, r.status, r.body, r.err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("recovery after SIGCONT: authorize allows again after %s, /readyz 200 after %s",
		recovered.Round(time.Millisecond), readyAgain.Round(time.Millisecond))
}

// freezeResult is one request's outcome and client-side latency.
type freezeResult struct {
	kind    string
	status  int
	code    string // error code of a JSON error answer
	body    []byte
	latency time.Duration
	err     error
}

// freezeProbe sends one authorize (with the bearer token) or /readyz.
func freezeProbe(client *http.Client, base, kind, tok string) freezeResult {
	var req *http.Request
	if kind == "readyz" {
		req, _ = http.NewRequest("GET", base+"/readyz", nil)
	} else {
		req, _ = http.NewRequest("POST", base+"/v1/authorize", strings.NewReader(`{"action":"use_tools","tool":"web_search"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	start := time.Now()
	res, err := client.Do(req)
	r := freezeResult{kind: kind}
	if err == nil {
		r.body, err = io.ReadAll(res.Body)
		res.Body.Close()
		r.status = res.StatusCode
	}
	r.latency, r.err = time.Since(start), err
	var e apiError
	if json.Unmarshal(r.body, &e) == nil {
		r.code = e.Error.Code
	}
	return r
}

type latencySummary struct{ p50, p99, max time.Duration }

// percentiles uses the nearest-rank method.
func percentiles(ds []time.Duration) latencySummary {
	if len(ds) == 0 {
		return latencySummary{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return s[max(i, 0)].Round(time.Millisecond)
	}
	return latencySummary{p50: rank(0.50), p99: rank(0.99), max: s[len(s)-1].Round(time.Millisecond)}
}
