package policy

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func ref(s string) ast.Ref { return ast.MustParseRef(s) }

// TestVirtualCacheFrames pins the contract topdown relies on: a value or
// "undefined" per reference, a fresh empty frame per Push (a `with`
// statement), and the frame's entries gone after Pop.
func TestVirtualCacheFrames(t *testing.T) {
	c := getEvaluation(nil)
	defer c.release()
	v := &c.virtual
	one, two := ast.IntNumberTerm(1), ast.IntNumberTerm(2)

	v.Put(ref("data.a.b"), one)
	v.Put(ref("data.a.c"), nil)
	type want struct {
		term      *ast.Term
		undefined bool
	}
	check := func(step string, r string, w want) {
		t.Helper()
		got, undefined := v.Get(ref(r))
		if got != w.term || undefined != w.undefined {
			t.Errorf("%s: Get(%s) = %v, %v; want %v, %v", step, r, got, undefined, w.term, w.undefined)
		}
	}
	check("put", "data.a.b", want{term: one})
	check("put undefined", "data.a.c", want{undefined: true})
	check("never put", "data.a", want{})
	check("never put", "data.a.b.c", want{})
	check("order matters", "data.b.a", want{})

	terms := len(v.terms)
	v.Push()
	check("new frame is empty", "data.a.b", want{})
	v.Put(ref("data.a.b"), two)
	check("new frame", "data.a.b", want{term: two})
	if keys := v.Keys(); len(keys) != 1 || !keys[0].Equal(ref("data.a.b")) {
		t.Errorf("Keys in the new frame = %v, want [data.a.b]", keys)
	}
	v.Pop()
	if len(v.terms) != terms {
		t.Errorf("after pop the key arena holds %d terms, want the %d from before the push", len(v.terms), terms)
	}
	check("after pop", "data.a.b", want{term: one})
	check("after pop", "data.a.c", want{undefined: true})
	v.Put(ref("data.a.d"), two) // reuses the popped entry's slot
	check("after pop", "data.a.d", want{term: two})
	check("after pop", "data.a.b", want{term: one})

	v.Put(ref("data.a.c"), one)
	check("undefined stays, as in OPA's cache", "data.a.c", want{undefined: true})
}

// TestVirtualCacheCopiesKeys: topdown reuses the slice it passes as a key.
func TestVirtualCacheCopiesKeys(t *testing.T) {
	c := getEvaluation(nil)
	defer c.release()
	key := ref("data.f.g")
	key = append(key, ast.StringTerm("arg"))
	c.virtual.Put(key, ast.BooleanTerm(true))
	key[len(key)-1] = ast.StringTerm("other")
	if got, _ := c.virtual.Get(ref(`data.f.g["arg"]`)); got == nil {
		t.Error("the entry changed with the caller's slice")
	}
	if got, _ := c.virtual.Get(key); got != nil {
		t.Errorf("Get(%v) = %v, want nothing", key, got)
	}
}

// TestBaseCachePrefix: a document read at a prefix answers for every
// reference below it, as in OPA's own base cache.
func TestBaseCachePrefix(t *testing.T) {
	c := getEvaluation(nil)
	defer c.release()
	b := &c.base
	doc := ast.MustParseTerm(`{"actions": {"chat": {"min_role": "operator"}}}`).Value
	b.Put(ref("data.agentauthz.config"), doc)
	cases := []struct {
		ref  string
		want string // "" = nothing
	}{
		{"data.agentauthz.config", `{"actions": {"chat": {"min_role": "operator"}}}`},
		{"data.agentauthz.config.actions.chat.min_role", `"operator"`},
		{"data.agentauthz.config.actions.deploy", ""},
		{"data.agentauthz", ""},
		{"data.other.config", ""},
	}
	for _, c := range cases {
		got := b.Get(ref(c.ref))
		switch {
		case c.want == "" && got != nil:
			t.Errorf("Get(%s) = %v, want nothing", c.ref, got)
		case c.want != "" && (got == nil || ast.Compare(got, ast.MustParseTerm(c.want).Value) != 0):
			t.Errorf("Get(%s) = %v, want %s", c.ref, got, c.want)
		}
	}
}

// TestEvalCachesComeBackEmpty: a released pair holds nothing of the
// evaluation that used it.
func TestEvalCachesComeBackEmpty(t *testing.T) {
	c := getEvaluation(nil)
	c.virtual.Put(ref("data.a"), ast.BooleanTerm(true))
	c.base.Put(ref("data.b"), ast.Boolean(true))
	c.virtual.Push()
	c.release()
	c.virtual.Put(ref("data.x"), nil) // same object, as the pool may hand it out again
	if got, undefined := c.virtual.Get(ref("data.a")); got != nil || undefined {
		t.Errorf("virtual cache kept data.a: %v, %v", got, undefined)
	}
	if got := c.base.Get(ref("data.b")); got != nil {
		t.Errorf("base cache kept data.b: %v", got)
	}
	if len(c.virtual.frames) != 1 {
		t.Errorf("%d frames after release, want 1", len(c.virtual.frames))
	}
}

// TestConcurrentDecisionsShareNoCache: decisions running at once, each
// with a pooled cache pair, never see one another's results.
func TestConcurrentDecisionsShareNoCache(t *testing.T) {
	e, _ := newEngine(t, fixture("valid"))
	ctx := context.Background()
	inputs := []struct {
		role  string
		allow bool
	}{{"operator", true}, {"nobody", false}, {"viewer", true}}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				c := inputs[(g+i)%len(inputs)]
				d, err := e.Decide(ctx, input(t, showAgent("show-agent", c.role)))
				if err != nil || d.Allow != c.allow {
					errs <- fmt.Errorf("grant %s: %+v, %v; want allow=%v", c.role, d, err, c.allow)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestDataReadsStayWithTheirActivation: the base cache a pooled evaluation
// keeps for one activation is empty when it serves another.
func TestDataReadsStayWithTheirActivation(t *testing.T) {
	a, b := &state{}, &state{}
	for i := range 20 {
		ev := getEvaluation(a)
		ev.base.Put(ref("data.x"), ast.Boolean(true))
		ev.release()
		other := getEvaluation(b) // most often the same evaluation, from the pool
		got := other.base.Get(ref("data.x"))
		other.release()
		if got != nil {
			t.Fatalf("round %d: an evaluation for activation b read activation a's data.x", i)
		}
	}
}
