package main

// The floor of a fresh decision, in process: the mix's own questions
// evaluated with no HTTP, no token lookup and no memo by
//   - agentauthz's engine on the default bundle (what serves /v1/authorize),
//   - OPA's rego API on the same bundle (what OPA's server runs, minus HTTP),
//   - OPA's rego API on the minimal three-ceiling policy (minimal/minimal.rego),
//   - OPA's rego API on a constant policy (one prepared evaluation, nothing read).
// The four sit side by side in one run, so their ratios are what to read
// (`go test -run '^$' -bench Floor -benchmem ./tests/load/`, part of
// `make bench-go`). TestFloorEvaluatorsAgree checks every evaluator against
// the mix's expected decisions, so the benchmark cannot time a wrong answer.

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

// floorQuestions is how many distinct mix questions the evaluators cycle
// through (every one is new to an evaluation: nothing caches across them).
const floorQuestions = 2048

type floorQuestion struct {
	ours, minimal ast.Value // the input documents OPA's server is sent in the mix
	allow         bool
}

// floorEvaluator answers one question with its allow.
type floorEvaluator struct {
	name string
	eval func(ctx context.Context, q *floorQuestion) (bool, error)
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
	if err := w.renderInputs(); err != nil {
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
	ourBundle := prepare("data.agentauthz.main.decision.allow", rego.ParsedBundle("default", bdl))
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
			allow, ok := rs[0].Expressions[0].Value.(bool)
			if !ok {
				return false, fmt.Errorf("allow is %T", rs[0].Expressions[0].Value)
			}
			return allow, nil
		}
	}
	return qs, []floorEvaluator{
		{"agentauthz-engine", func(ctx context.Context, q *floorQuestion) (bool, error) {
			d, err := eng.Decide(ctx, q.ours)
			return d.Allow, err
		}},
		{"opa-rego-our-bundle", opaEval(ourBundle, false)},
		{"opa-rego-minimal-policy", opaEval(minimalPolicy, true)},
		{"opa-rego-constant", opaEval(constant, true)},
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
// expected decision on every question (the constant policy allows all).
func TestFloorEvaluatorsAgree(t *testing.T) {
	qs, evs := floorSetup(t)
	ctx := context.Background()
	allowed := 0
	for _, q := range qs {
		if q.allow {
			allowed++
		}
	}
	if allowed == 0 || allowed == len(qs) {
		t.Fatalf("%d of %d questions allowed: the sample must hold both answers", allowed, len(qs))
	}
	for _, ev := range evs {
		for i := range qs {
			got, err := ev.eval(ctx, &qs[i])
			want := qs[i].allow || ev.name == "opa-rego-constant"
			if err != nil || got != want {
				t.Fatalf("%s, question %d: allow %v, %v; want %v", ev.name, i, got, err, want)
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
				if _, err := ev.eval(ctx, &qs[i%len(qs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
