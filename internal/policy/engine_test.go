package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestActivatesBundle(t *testing.T) {
	tarball := filepath.Join(t.TempDir(), "bundle.tar.gz")
	writeTarball(t, "valid", tarball, nil)

	tests := []struct {
		name string
		path string
	}{
		{"directory bundle", fixture("valid")},
		{"tar.gz bundle", tarball},
	}
	var revisions []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, logs := newEngine(t, tt.path)
			act := e.Activation()
			if !strings.HasPrefix(act.Revision, "fixture-1+") || len(act.Revision) != len("fixture-1+")+12 {
				t.Errorf("Revision = %q, want fixture-1+<12 hex>", act.Revision)
			}
			revisions = append(revisions, act.Revision)
			if act.Generation != 1 {
				t.Errorf("Generation = %d, want 1", act.Generation)
			}
			if !act.Deterministic {
				t.Error("Deterministic = false for a policy without non-deterministic builtins")
			}
			if act.Source != tt.path {
				t.Errorf("Source = %q, want %q", act.Source, tt.path)
			}
			if act.ActivatedAt.IsZero() {
				t.Error("ActivatedAt is zero")
			}
			wantRoles := map[string]int{"viewer": 1, "operator": 2, "admin": 3}
			if !reflect.DeepEqual(act.AgentRoles, wantRoles) {
				t.Errorf("AgentRoles = %v, want %v", act.AgentRoles, wantRoles)
			}
			if want := []string{"administrator", "subscriber"}; !reflect.DeepEqual(act.UserRoles, want) {
				t.Errorf("UserRoles = %v, want %v", act.UserRoles, want)
			}
			if want := []string{"delete-agent", "list-accessible-agents", "show-agent", "whoami"}; !reflect.DeepEqual(act.Abilities, want) {
				t.Errorf("Abilities = %v, want %v", act.Abilities, want)
			}
			if want := []string{"chat"}; !reflect.DeepEqual(act.Actions, want) {
				t.Errorf("Actions = %v, want %v", act.Actions, want)
			}
			// main_test.rego redefines decision as a string: if it had been
			// loaded, this evaluation would fail with a conflict.
			d, err := e.Decide(context.Background(), input(t, showAgent("show-agent", "viewer")))
			if err != nil {
				t.Fatalf("Decide: %v (was main_test.rego loaded?)", err)
			}
			if !d.Allow || d.Role != "viewer" {
				t.Errorf("Decide = %+v, want allow as viewer", d)
			}
			if !strings.Contains(logs.String(), "policy bundle activated") {
				t.Errorf("no activation log; logs:\n%s", logs)
			}
		})
	}
	if len(revisions) == 2 && revisions[0] != revisions[1] {
		t.Errorf("same content, different revisions: dir %q, tarball %q", revisions[0], revisions[1])
	}
}

func TestRejectsBundle(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		want    string
	}{
		{"syntax error names file and line", "syntax_error", "main.rego:5"},
		{"compile error names file and line", "compile_error", "main.rego:4"},
		{"missing decision rule is named", "missing_decision", "data.agentauthz.main.decision"},
		{"data failing validate.errors is listed", "invalid_data", "settings.token_reach is everywhere"},
		{"agent_roles must be numbers", "bad_agent_roles", `agent_roles["operator"]`},
		{"missing path is a clear error", "does_not_exist", "does not exist"},
		{"conflicting definitions of decision fail a decision case", "conflict", `decision case "authorize: a stranger may not chat": evaluation error: testdata/conflict/main.rego:6: eval_conflict_error`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), Options{BundlePath: fixture(tt.fixture)})
			if err == nil {
				t.Fatal("New succeeded, want a rejection")
			}
			if !errors.Is(err, ErrRejected) {
				t.Errorf("error %v does not wrap ErrRejected", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestReloadKeepsServingPreviousActivation(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		want    string
	}{
		{"syntax error", "syntax_error", "main.rego:5"},
		{"compile error", "compile_error", "main.rego:4"},
		{"missing decision rule", "missing_decision", "data.agentauthz.main.decision"},
		{"data failing validation", "invalid_data", "token_reach"},
		{"agent_roles not numbers", "bad_agent_roles", "agent_roles"},
		{"conflicting definitions of decision", "conflict", "eval_conflict_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyBundle(t, "valid")
			e, logs := newEngine(t, dir)
			ctx := context.Background()
			in := input(t, showAgent("delete-agent", "viewer"))
			before, err := e.Decide(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			act := e.Activation()

			replaceBundle(t, dir, tt.fixture)
			err = e.Reload(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Reload error = %v, want one mentioning %q", err, tt.want)
			}
			if got := e.Activation(); got.Generation != act.Generation || got.Revision != act.Revision {
				t.Errorf("activation changed after a rejected reload: %+v -> %+v", act, got)
			}
			after, err := e.Decide(ctx, in)
			if err != nil {
				t.Fatalf("Decide after rejected reload: %v", err)
			}
			if !reflect.DeepEqual(before, after) {
				t.Errorf("decision changed after a rejected reload: %+v -> %+v", before, after)
			}
			if !strings.Contains(logs.String(), "policy bundle rejected") && !strings.Contains(logs.String(), "policy reload failed") {
				t.Errorf("rejection not logged; logs:\n%s", logs)
			}

			replaceBundle(t, dir, "valid")
			if err := e.Reload(ctx); err != nil {
				t.Fatalf("Reload of the restored bundle: %v", err)
			}
		})
	}
}

func TestReloadUnchangedBundleKeepsGeneration(t *testing.T) {
	e, _ := newEngine(t, copyBundle(t, "valid"))
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g := e.Activation().Generation; g != 1 {
		t.Errorf("Generation = %d after reloading identical content, want 1", g)
	}
}

func TestReloadOfChangedDataChangesRevisionAndGeneration(t *testing.T) {
	dir := copyBundle(t, "valid")
	e, _ := newEngine(t, dir)
	before := e.Activation()
	editData(t, dir, `"admin": 3`, `"admin": 3, "owner": 4`)
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := e.Activation()
	if after.Revision == before.Revision {
		t.Errorf("Revision %q unchanged after a data edit", after.Revision)
	}
	if after.Generation != before.Generation+1 {
		t.Errorf("Generation = %d, want %d", after.Generation, before.Generation+1)
	}
	if after.AgentRoles["owner"] != 4 {
		t.Errorf("AgentRoles = %v, want owner 4", after.AgentRoles)
	}
}

func TestDeterminism(t *testing.T) {
	tests := []struct {
		fixture string
		want    bool
	}{
		{"valid", true},
		{"nondeterministic", false}, // calls time.now_ns
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			e, logs := newEngine(t, fixture(tt.fixture))
			if got := e.Activation().Deterministic; got != tt.want {
				t.Errorf("Deterministic = %v, want %v", got, tt.want)
			}
			if !tt.want && !strings.Contains(logs.String(), "time.now_ns") {
				t.Errorf("activation log does not name time.now_ns; logs:\n%s", logs)
			}
		})
	}
}

// editData rewrites data.json in dir, replacing old with new.
func editData(t *testing.T, dir, old, new string) {
	t.Helper()
	p := filepath.Join(dir, "data.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("data.json does not contain %q", old)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentDecideDuringReload(t *testing.T) {
	dir := copyBundle(t, "valid")
	e, _ := newEngine(t, dir)
	ctx := context.Background()
	in := input(t, showAgent("show-agent", "operator"))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 { // deciders; more only starves the reloads (each runs the decision cases) on small machines
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				d, err := e.Decide(ctx, in)
				if err != nil {
					errs <- err
					return
				}
				if !d.Allow || d.Role != "operator" {
					errs <- errors.New("wrong decision during reload")
					return
				}
				_ = e.Activation()
			}
		}()
	}
	reach := []string{`"token_reach": "agent"`, `"token_reach": "owner"`}
	for i := range 20 {
		editData(t, dir, reach[i%2], reach[(i+1)%2])
		if err := e.Reload(ctx); err != nil {
			t.Errorf("Reload %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if g := e.Activation().Generation; g != 21 {
		t.Errorf("Generation = %d after 20 reloads, want 21", g)
	}
}

// An engine that awaits a bundle server's bundle decides nothing until the
// bundle activates: every decision and explanation fails (the caller
// denies with 503), readiness fails, and no policy, not even the embedded
// default, answers in the meantime.
func TestAwaitingEngineRefusesEveryDecisionUntilItsBundleActivates(t *testing.T) {
	ctx := context.Background()
	e, err := New(ctx, Options{Await: true})
	if err != nil {
		t.Fatal(err)
	}
	in := input(t, showAgent("show-agent", "viewer"))
	if d, err := e.Decide(ctx, in); !errors.Is(err, ErrNoBundle) || !errors.Is(err, ErrPolicy) || d.Allow {
		t.Fatalf("Decide before any bundle = %+v, %v; want a refusal with ErrNoBundle", d, err)
	}
	if _, _, err := e.Explain(ctx, in); !errors.Is(err, ErrNoBundle) {
		t.Fatalf("Explain before any bundle: %v, want ErrNoBundle", err)
	}
	if err := e.Failing(); err == nil {
		t.Fatal("Failing() = nil before any bundle; readiness must fail")
	}
	if act := e.Activation(); act.Generation != 0 || act.Revision != "" || act.Deterministic {
		t.Fatalf("Activation() before any bundle = %+v, want the zero activation (memo off)", act)
	}
	b, err := LoadBundle(fixture("valid"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ActivateBundle(ctx, b, "bundle server"); err != nil {
		t.Fatal(err)
	}
	if d, err := e.Decide(ctx, in); err != nil || !d.Allow || d.Generation != 1 {
		t.Fatalf("Decide after activation = %+v, %v; want the bundle's allow, generation 1", d, err)
	}
	if err := e.Failing(); err != nil {
		t.Fatalf("Failing() after activation: %v", err)
	}
}
