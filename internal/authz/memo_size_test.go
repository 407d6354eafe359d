package authz

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// memoWorld is a service on the default policy and n distinct mix-like
// questions: tokens with a capability list on their own agents (20 a
// agent, an allow-list tool policy), each asking use_tools with its own tool.
func memoWorld(tb testing.TB, size, n int) (*Service, []*principal.Principal, []AuthorizeRequest) {
	tb.Helper()
	eng, err := policy.New(context.Background(), policy.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	svc := New(nil, eng, nil, Config{MemoSize: size})
	ps := make([]*principal.Principal, n)
	reqs := make([]AuthorizeRequest, n)
	caps := []string{"datamachine_chat", "datamachine_use_tools", "read"}
	for i := range n {
		owner := &model.User{ID: int64(i/20 + 1), Roles: []string{"editor", "author"}, Status: model.StatusActive}
		agent := &model.Agent{ID: int64(i/20 + 1), OwnerID: owner.ID, Status: model.StatusActive,
			ToolPolicy: &model.ToolPolicy{Mode: "allow", Tools: []string{"web_search", "fetch_url", "run_code", "read_file", "calendar", "translate"}}}
		tok := &model.Token{ID: int64(i + 1), AgentID: agent.ID, Capabilities: &caps}
		ps[i] = &principal.Principal{Kind: principal.KindToken, ID: fmt.Sprintf("token:%d", tok.ID), User: owner, Token: tok, Agent: agent}
		tool := []string{"web_search", "fetch_url", "shell"}[i%3]
		reqs[i] = AuthorizeRequest{Action: "use_tools", Tool: &tool}
	}
	return svc, ps, reqs
}

func askMemo(tb testing.TB, svc *Service, p *principal.Principal, req AuthorizeRequest) AuthorizeResult {
	tb.Helper()
	res, err := svc.Authorize(context.Background(), p, req)
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

// TestMemoSizeIsHeld: Config.MemoSize bounds the memo, the least recently
// used decision going first; 0 is DefaultMemoSize; a negative size is no
// memo, with the same answers; a new bundle generation empties it.
func TestMemoSizeIsHeld(t *testing.T) {
	t.Run("a memo of two keeps the two most recently used decisions", func(t *testing.T) {
		svc, ps, reqs := memoWorld(t, 2, 3)
		ask := func(i int, want bool) {
			t.Helper()
			if res := askMemo(t, svc, ps[i], reqs[i]); res.Memoized != want {
				t.Fatalf("question %d: answered from the memo %v, want %v", i, res.Memoized, want)
			}
		}
		ask(0, false)
		ask(1, false)
		ask(0, true)  // 0 is now the most recently used
		ask(2, false) // so 1 goes, not 0 (first in, first out would drop 0)
		ask(0, true)
		ask(2, true)
		ask(1, false)
	})
	t.Run("0 is the default memo", func(t *testing.T) {
		svc, ps, reqs := memoWorld(t, 0, 1)
		if svc.memo == nil || svc.memo.size != DefaultMemoSize {
			t.Fatalf("MemoSize 0 made %+v, want a memo of %d", svc.memo, DefaultMemoSize)
		}
		askMemo(t, svc, ps[0], reqs[0])
		if res := askMemo(t, svc, ps[0], reqs[0]); !res.Memoized {
			t.Fatal("a repeated question was not answered from the default memo")
		}
	})
	t.Run("a negative size is no memo, and the same answers", func(t *testing.T) {
		off, ps, reqs := memoWorld(t, -1, 6)
		on, _, _ := memoWorld(t, 0, 0)
		allowed := 0
		for i := range ps {
			for range 2 {
				res, want := askMemo(t, off, ps[i], reqs[i]), askMemo(t, on, ps[i], reqs[i])
				if res.Memoized {
					t.Fatalf("question %d was answered from a memo that is off", i)
				}
				if res.Allow != want.Allow || fmt.Sprint(res.DeniedBy) != fmt.Sprint(want.DeniedBy) {
					t.Fatalf("question %d: without the memo %v %v, with it %v %v", i, res.Allow, res.DeniedBy, want.Allow, want.DeniedBy)
				}
				if res.Allow {
					allowed++
				}
			}
		}
		if allowed == 0 || allowed == 2*len(ps) {
			t.Fatalf("%d of %d answers allowed: the questions must hold both answers", allowed, 2*len(ps))
		}
	})
	t.Run("a new generation empties the memo", func(t *testing.T) {
		svc, ps, reqs := memoWorld(t, 0, 3)
		for i := range ps {
			askMemo(t, svc, ps[i], reqs[i])
		}
		if n := svc.memo.cache.Len(); n != 3 {
			t.Fatalf("the memo holds %d decisions, want 3", n)
		}
		bdl, err := policy.EmbeddedBundle()
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.engine.(*policy.Engine).ActivateBundle(context.Background(), bdl, "again"); err != nil {
			t.Fatal(err)
		}
		if res := askMemo(t, svc, ps[0], reqs[0]); res.Memoized {
			t.Fatal("a decision of the previous generation answered")
		}
		if n := svc.memo.cache.Len(); n != 1 {
			t.Fatalf("after the first decision of a new generation the memo holds %d decisions, want 1 (the old ones dropped)", n)
		}
	})
}

// BenchmarkMemoEntryHeap reports what one remembered decision costs the
// heap (what --memo-size multiplies): its key, its decision and the LRU's
// bookkeeping, for the mix-like questions of memoWorld (a third of them
// denied by the tool policy, which carry a reason). Each iteration fills
// an empty memo with 2,000 fresh decisions; ns/op is meaningless.
func BenchmarkMemoEntryHeap(b *testing.B) {
	const n = 2000
	memoHeap(b, n) // the engine's pools and first-use state settle first
	var bytes, objects float64
	for b.Loop() {
		by, ob := memoHeap(b, n)
		bytes, objects = bytes+by, objects+ob
	}
	b.ReportMetric(bytes/float64(b.N), "B/decision")
	b.ReportMetric(objects/float64(b.N), "objects/decision")
}

func memoHeap(b *testing.B, n int) (bytes, objects float64) {
	svc, ps, reqs := memoWorld(b, 2*n, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range ps {
		askMemo(b, svc, ps[i], reqs[i])
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := svc.memo.cache.Len(); got != n {
		b.Fatalf("the memo holds %d decisions, want %d", got, n)
	}
	runtime.KeepAlive(svc)
	runtime.KeepAlive(ps)
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n), (float64(after.HeapObjects) - float64(before.HeapObjects)) / float64(n)
}
