package policy

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/bundles"
	"github.com/agentauthz/agentauthz/policies"
)

// stageDefault writes THE REAL default bundle (policies/agentauthz/** without the
// tests, bundles/default with its decision cases) into a directory bundle a
// test may edit. withCases=false leaves the cases out.
func stageDefault(t *testing.T, withCases bool) string {
	t.Helper()
	dir := t.TempDir()
	copyFS := func(src fs.FS, root string, keep func(string) bool) {
		err := fs.WalkDir(src, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !keep(p) {
				return err
			}
			b, err := fs.ReadFile(src, p)
			if err != nil {
				return err
			}
			rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
			dst := filepath.Join(dir, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			return os.WriteFile(dst, b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	copyFS(policies.FS, ".", func(p string) bool { return strings.HasSuffix(p, ".rego") && !isRegoTest(p) })
	copyFS(bundles.Default, "default", func(p string) bool { return withCases || p != defaultCasesFile })
	return dir
}

// editJSON rewrites the JSON file at p through fn.
func editJSON(t *testing.T, p string, fn func(doc map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	fn(doc)
	if b, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDefaultCasesCoverEveryAbility: the default bundle's cases ask about
// every ability of its table, and the embedded default decides them all.
func TestDefaultCasesCoverEveryAbility(t *testing.T) {
	cases, err := defaultCases()
	if err != nil {
		t.Fatal(err)
	}
	e, logs := newEngine(t, "")
	act := e.Activation()
	if !act.CasesFromBundle || act.Cases != len(cases) {
		t.Errorf("Activation Cases=%d CasesFromBundle=%t, want %d from the bundle", act.Cases, act.CasesFromBundle, len(cases))
	}
	set := caseSet{cases: cases, own: true}
	if missing := set.uncovered(act.Abilities); len(missing) > 0 {
		t.Errorf("no default decision case asks about %v", missing)
	}
	allow := map[string]bool{}
	for _, c := range cases {
		allow[c.ability] = allow[c.ability] || c.allow
	}
	for _, a := range act.Abilities {
		if !allow[a] {
			t.Errorf("no default decision case expects %s to allow", a)
		}
	}
	if strings.Contains(logs.String(), "do not ask about every ability") {
		t.Errorf("coverage warning for the default bundle; logs:\n%s", logs)
	}
}

func TestStagedDefaultBundle(t *testing.T) {
	t.Run("with its cases it passes them", func(t *testing.T) {
		e, _ := newEngine(t, stageDefault(t, true))
		if act := e.Activation(); !act.CasesFromBundle || act.Cases == 0 {
			t.Errorf("Activation = %+v, want the bundle's own cases", act)
		}
	})
	t.Run("without cases it is checked on the default inputs only", func(t *testing.T) {
		dir := stageDefault(t, false)
		// Data that changes answers is the bundle's own business ...
		editJSON(t, filepath.Join(dir, "data.json"), func(doc map[string]any) {
			abilities := doc["agentauthz"].(map[string]any)["config"].(map[string]any)["abilities"].(map[string]any)
			abilities["show-agent"].(map[string]any)["min_role"] = nil
		})
		e, logs := newEngine(t, dir)
		if act := e.Activation(); act.CasesFromBundle || act.Cases == 0 {
			t.Errorf("Activation = %+v, want the default inputs", act)
		}
		if !strings.Contains(logs.String(), "ships no decision cases") {
			t.Errorf("no warning about the missing cases; logs:\n%s", logs)
		}
	})
	t.Run("data that lets a stranger in fails the stranger's case", func(t *testing.T) {
		dir := stageDefault(t, true)
		editJSON(t, filepath.Join(dir, "data.json"), func(doc map[string]any) {
			abilities := doc["agentauthz"].(map[string]any)["config"].(map[string]any)["abilities"].(map[string]any)
			abilities["show-agent"].(map[string]any)["min_role"] = nil
		})
		_, err := New(context.Background(), Options{BundlePath: dir})
		if !errors.Is(err, ErrRejected) {
			t.Fatalf("New = %v, want a rejection", err)
		}
		for _, want := range []string{
			`decision case "show-agent: a stranger is denied by its role": decided allow=true denied_by=[], want allow=false denied_by=[agent_role]`,
			"of the bundle's",
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	})
	t.Run("a conflicting second decision is refused with its cases", func(t *testing.T) {
		dir := stageDefault(t, true)
		conflict := "package agentauthz.main\n\ndecision := {\"allow\": false, \"role\": null, \"denied_by\": [\"conflict\"], \"reasons\": []} if input.ability == \"whoami\"\n"
		if err := os.WriteFile(filepath.Join(dir, "conflict.rego"), []byte(conflict), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := New(context.Background(), Options{BundlePath: dir})
		if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), `decision case "whoami: an active user is answered": evaluation error:`) ||
			!strings.Contains(err.Error(), "eval_conflict_error") {
			t.Fatalf("New = %v, want a rejection naming the whoami case and eval_conflict_error", err)
		}
	})
}

func TestMalformedCasesAreRefused(t *testing.T) {
	tests := []struct {
		name  string
		cases any
		want  string
	}{
		{"not an object", []any{"x"}, "decision cases are an array, not an object"},
		{"case without input", map[string]any{"c": map[string]any{"expect": map[string]any{"allow": true}}}, `case "c": input is null/absent, not an object`},
		{"case without expect", map[string]any{"c": map[string]any{"input": map[string]any{}}}, `case "c": expect is null/absent`},
		{"allow not a boolean", map[string]any{"c": map[string]any{"input": map[string]any{}, "expect": map[string]any{"allow": "yes"}}}, "expect.allow is a string"},
		{"denied_by not strings", map[string]any{"c": map[string]any{"input": map[string]any{}, "expect": map[string]any{"allow": false, "denied_by": []any{1}}}}, "expect.denied_by[0] is a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyBundle(t, "valid")
			editJSON(t, filepath.Join(dir, "data.json"), func(doc map[string]any) {
				doc["agentauthz"].(map[string]any)["cases"] = tt.cases
			})
			_, err := New(context.Background(), Options{BundlePath: dir})
			if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "data.agentauthz.cases") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want a rejection naming data.agentauthz.cases and %q", err, tt.want)
			}
		})
	}
}

func TestOwnCasesReplaceTheDefaults(t *testing.T) {
	dir := copyBundle(t, "valid")
	stranger := showAgent("show-agent", "viewer")
	stranger["grants"] = []any{}
	editJSON(t, filepath.Join(dir, "data.json"), func(doc map[string]any) {
		doc["agentauthz"].(map[string]any)["cases"] = map[string]any{
			"show-agent: a stranger is denied": map[string]any{"input": stranger, "expect": map[string]any{"allow": false, "denied_by": []any{"agent_role"}}},
			"show-agent: a viewer is allowed":  map[string]any{"input": showAgent("show-agent", "viewer"), "expect": map[string]any{"allow": true}},
		}
	})
	e, logs := newEngine(t, dir)
	if act := e.Activation(); !act.CasesFromBundle || act.Cases != 2 {
		t.Errorf("Activation Cases=%d CasesFromBundle=%t, want the bundle's 2", act.Cases, act.CasesFromBundle)
	}
	if !strings.Contains(logs.String(), "do not ask about every ability") || !strings.Contains(logs.String(), "delete-agent") {
		t.Errorf("no coverage warning naming delete-agent; logs:\n%s", logs)
	}

	// The expected denied_by is compared when given.
	editJSON(t, filepath.Join(dir, "data.json"), func(doc map[string]any) {
		c := doc["agentauthz"].(map[string]any)["cases"].(map[string]any)["show-agent: a stranger is denied"].(map[string]any)
		c["expect"] = map[string]any{"allow": false, "denied_by": []any{"capability"}}
	})
	err := e.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), `"show-agent: a stranger is denied": decided allow=false denied_by=[agent_role], want allow=false denied_by=[capability]`) {
		t.Fatalf("Reload = %v, want the denied_by mismatch named", err)
	}
	if g := e.Activation().Generation; g != 1 {
		t.Errorf("Generation = %d after a rejected reload, want 1", g)
	}
	if h := e.Health(); h.Rejections != 1 {
		t.Errorf("Health().Rejections = %d, want 1", h.Rejections)
	}
}

// TestWatchRefusesConflictingBundle: the fsnotify path keeps the last good
// bundle serving when the edited bundle fails its cases, and picks up the
// fixed bundle afterwards.
func TestWatchRefusesConflictingBundle(t *testing.T) {
	dir := copyBundle(t, "valid")
	e, logs := newEngine(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fixture("conflict/conflict.rego"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conflict.rego"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watcher to reject the conflicting bundle", func() bool {
		return strings.Contains(logs.String(), "eval_conflict_error")
	})
	if g := e.Activation().Generation; g != 1 {
		t.Fatalf("Generation = %d after the conflicting edit, want 1", g)
	}
	if _, err := e.Decide(ctx, input(t, showAgent("show-agent", "viewer"))); err != nil {
		t.Fatalf("the last good bundle stopped deciding: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "conflict.rego")); err != nil {
		t.Fatal(err)
	}
	editData(t, dir, `"admin": 3`, `"admin": 3, "owner": 4`)
	waitFor(t, "the watcher to activate the fixed bundle", func() bool { return e.Activation().Generation == 2 })
}

func TestFailing(t *testing.T) {
	ctx := context.Background()
	boom := showAgent("show-agent", "viewer")
	boom["tool"] = "boom" // the one input partial_conflict's second decision conflicts on
	ok := showAgent("show-agent", "viewer")
	newFailing := func(t *testing.T, window time.Duration) *Engine {
		t.Helper()
		e, err := New(ctx, Options{BundlePath: fixture("partial_conflict"), FailStreak: 3, FailWindow: window})
		if err != nil {
			t.Fatalf("a bundle failing only on inputs no case uses should activate: %v", err)
		}
		return e
	}
	decide := func(t *testing.T, e *Engine, in map[string]any) error {
		t.Helper()
		_, err := e.Decide(ctx, input(t, in))
		return err
	}

	t.Run("a streak of failures is failing until a success", func(t *testing.T) {
		e := newFailing(t, time.Hour)
		for i := range 2 {
			if err := decide(t, e, boom); !errors.Is(err, ErrPolicy) {
				t.Fatalf("Decide(boom) #%d = %v, want a policy error", i+1, err)
			}
			if err := e.Failing(); err != nil {
				t.Fatalf("Failing after %d failures = %v, want nil (streak is 3)", i+1, err)
			}
		}
		_ = decide(t, e, boom)
		if err := e.Failing(); !errors.Is(err, ErrFailing) {
			t.Fatalf("Failing after 3 failures = %v, want ErrFailing", err)
		}
		if h := e.Health(); !h.Failing || h.EvaluationFailures != 3 {
			t.Errorf("Health = %+v, want failing with 3 failures", h)
		}
		if _, _, err := e.Explain(ctx, input(t, boom)); err == nil {
			t.Fatal("Explain(boom) succeeded")
		}
		if err := decide(t, e, ok); err != nil {
			t.Fatal(err)
		}
		if err := e.Failing(); err != nil {
			t.Errorf("Failing after a success = %v, want nil", err)
		}
		if h := e.Health(); h.Failing || h.EvaluationFailures != 4 {
			t.Errorf("Health = %+v, want not failing with 4 failures", h)
		}
	})
	t.Run("interleaved successes keep it ready", func(t *testing.T) {
		e := newFailing(t, time.Hour)
		for range 10 {
			_ = decide(t, e, boom)
			_ = decide(t, e, boom)
			if err := decide(t, e, ok); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Failing(); err != nil {
			t.Errorf("Failing = %v, want nil", err)
		}
	})
	t.Run("the window ends a streak without traffic", func(t *testing.T) {
		e := newFailing(t, 50*time.Millisecond)
		for range 3 {
			_ = decide(t, e, boom)
		}
		if err := e.Failing(); !errors.Is(err, ErrFailing) {
			t.Fatalf("Failing = %v, want ErrFailing", err)
		}
		waitFor(t, "the failure window to pass", func() bool { return e.Failing() == nil })
	})
	t.Run("evaluations the caller cancelled do not count", func(t *testing.T) {
		e := newFailing(t, time.Hour)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		// Each fails, by cancellation or by the conflict: neither counts
		// once the caller has given up.
		for range 5 {
			if _, err := e.Decide(cctx, input(t, boom)); err == nil {
				t.Fatal("Decide(boom) succeeded")
			}
		}
		if err := e.Failing(); err != nil {
			t.Errorf("Failing = %v, want nil", err)
		}
		if h := e.Health(); h.EvaluationFailures != 0 {
			t.Errorf("Health().EvaluationFailures = %d, want 0", h.EvaluationFailures)
		}
	})
	t.Run("a new activation starts a new record", func(t *testing.T) {
		dir := copyBundle(t, "partial_conflict")
		e, err := New(ctx, Options{BundlePath: dir, FailStreak: 3, FailWindow: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			_ = decide(t, e, boom)
		}
		if e.Failing() == nil {
			t.Fatal("not failing after 3 failures")
		}
		replaceBundle(t, dir, "valid")
		if err := e.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if err := e.Failing(); err != nil {
			t.Errorf("Failing after activating a new bundle = %v, want nil", err)
		}
	})
}
