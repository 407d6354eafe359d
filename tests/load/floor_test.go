package main

// The floor of a fresh decision, in process: the mix's own questions
// evaluated with no HTTP, no token lookup and no memo by
//   - agentauthz's engine on the default bundle (what serves /v1/authorize),
//   - OPA's rego API on the same bundle (what OPA's server runs, minus HTTP),
//   - OPA's rego API on the minimal three-ceiling policy (minimal/minimal.rego),
//   - OPA's rego API on a constant policy (one prepared evaluation, nothing read).
// The four sit side by side in one run, so their ratios are what to read
// (`go test -run '^$' -bench Floor -benchmem ./tests/load/`, part of
// `make bench-go`). Every answer the benchmark times is checked against the
// mix's expected decision; TestFloorEvaluatorsAgree runs the same checks on
// a sample in `make test`.

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/agentauthz/agentauthz/internal/policy"
)

// floorQuestions is how many draws of the mix's question sequence the
// evaluators cycle through (2,029 distinct questions). No decision is kept
// from one evaluation to the next; our engine keeps only what it read from
// the active bundle's data, as it does in production.
const floorQuestions = 2048

type floorQuestion struct {
	ours, minimal ast.Value // the input documents OPA's server is sent in the mix
	allow         bool
}

// floorTestQuestions is the sample TestFloorEvaluatorsAgree checks (under
// the race detector an evaluation of our bundle takes about a millisecond).
const floorTestQuestions = 256

// floorEvaluator answers one question with its allow.
type floorEvaluator struct {
	name      string
	eval      func(ctx context.Context, q *floorQuestion) (bool, error)
	allowsAll bool // the constant policy
}

// check asks ev q and compares the answer with the mix's expected decision.
func (ev floorEvaluator) check(ctx context.Context, q *floorQuestion) error {
	got, err := ev.eval(ctx, q)
	if err != nil {
		return err
	}
	if want := q.allow || ev.allowsAll; got != want {
		return fmt.Errorf("allow %v, want %v", got, want)
	}
	return nil
}

func floorSetup(tb testing.TB) ([]floorQuestion, []floorEvaluator) {
	tb.Helper()
	ctx := context.Background()
	root := filepath.Join("..", "..")
	conf, err := readBundleConfig(root)
	if err != nil {
		tb.Fatal(err)
	}
	w, err := buildMix(conf, 1000, 20, "uniform", 42)
	if err != nil {
		tb.Fatal(err)
	}
	ours, minimal := w.opaTarget("", 42, false), w.opaTarget("", 42, true)
	qs := make([]floorQuestion, floorQuestions)
	for i := range qs {
		qs[i] = floorQuestion{
			ours:    requestInput(tb, ours.body(0, uint64(i))),
			minimal: requestInput(tb, minimal.body(0, uint64(i))),
			allow:   w.allow(w.question(42, 0, uint64(i))),
		}
	}

	eng, err := policy.New(ctx, policy.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	bdl, err := policy.EmbeddedBundle()
	if err != nil {
		tb.Fatal(err)
	}
	minDir := tb.TempDir()
	if err := stageMinimal(conf, minDir); err != nil {
		tb.Fatal(err)
	}
	prepare := func(query string, opts ...func(*rego.Rego)) rego.PreparedEvalQuery {
		pq, err := rego.New(append(opts, rego.Query(query))...).PrepareForEval(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		return pq
	}
	// the whole decision document, as the mix asks OPA's server for it
	ourBundle := prepare("data.agentauthz.main.decision", rego.ParsedBundle("default", bdl))
	minimalPolicy := prepare("data.minimal.allow", rego.LoadBundle(minDir))
	constant := prepare("data.floor.allow", rego.Module("floor.rego", "package floor\n\nallow := true\n"))
	opaEval := func(pq rego.PreparedEvalQuery, minimal bool) func(context.Context, *floorQuestion) (bool, error) {
		return func(ctx context.Context, q *floorQuestion) (bool, error) {
			in := q.ours
			if minimal {
				in = q.minimal
			}
			rs, err := pq.Eval(ctx, rego.EvalParsedInput(in))
			if err != nil {
				return false, err
			}
			if len(rs) != 1 || len(rs[0].Expressions) != 1 {
				return false, fmt.Errorf("result set %v", rs)
			}
			v := rs[0].Expressions[0].Value
			if doc, ok := v.(map[string]any); ok {
				v = doc["allow"]
			}
			allow, ok := v.(bool)
			if !ok {
				return false, fmt.Errorf("allow is %T", v)
			}
			return allow, nil
		}
	}
	return qs, []floorEvaluator{
		{name: "agentauthz-engine", eval: func(ctx context.Context, q *floorQuestion) (bool, error) {
			d, err := eng.Decide(ctx, q.ours)
			return d.Allow, err
		}},
		{name: "opa-rego-our-bundle", eval: opaEval(ourBundle, false)},
		{name: "opa-rego-minimal-policy", eval: opaEval(minimalPolicy, true)},
		{name: "opa-rego-constant", eval: opaEval(constant, true), allowsAll: true},
	}
}

// requestInput is the input document of an OPA Data API request body.
func requestInput(tb testing.TB, body []byte) ast.Value {
	tb.Helper()
	v, err := ast.ValueFromReader(bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("%s: %v", body, err)
	}
	in := v.(ast.Object).Get(ast.InternedTerm("input"))
	if in == nil {
		tb.Fatalf("%s: no input", body)
	}
	return in.Value
}

// TestFloorEvaluatorsAgree: each evaluator of BenchmarkFloor gives the mix's
// expected decision on a sample of its questions.
func TestFloorEvaluatorsAgree(t *testing.T) {
	qs, evs := floorSetup(t)
	ctx := context.Background()
	allowed := 0
	for _, q := range qs[:floorTestQuestions] {
		if q.allow {
			allowed++
		}
	}
	if allowed == 0 || allowed == floorTestQuestions {
		t.Fatalf("%d of %d questions allowed: the sample must hold both answers", allowed, floorTestQuestions)
	}
	for _, ev := range evs {
		for i := range floorTestQuestions {
			if err := ev.check(ctx, &qs[i]); err != nil {
				t.Fatalf("%s, question %d: %v", ev.name, i, err)
			}
		}
	}
}

// BenchmarkFloor is one fresh decision per operation for each evaluator.
func BenchmarkFloor(b *testing.B) {
	qs, evs := floorSetup(b)
	ctx := context.Background()
	for _, ev := range evs {
		b.Run(ev.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := ev.check(ctx, &qs[i%len(qs)]); err != nil {
					b.Fatalf("question %d: %v", i%len(qs), err)
				}
				i++
			}
		})
	}
}
