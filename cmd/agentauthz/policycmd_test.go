package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/agentauthz/agentauthz/bundles"
	"github.com/agentauthz/agentauthz/internal/httpapi"
	"github.com/agentauthz/agentauthz/internal/metrics"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/store"
	"github.com/agentauthz/agentauthz/policies"
)

// stageBundle writes the real default bundle (policies without tests, data,
// manifest and decision cases) into a directory, plus extra files.
func stageBundle(t *testing.T, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	write := func(rel string, b []byte) {
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyFS := func(src fs.FS, root string, keep func(string) bool) {
		err := fs.WalkDir(src, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !keep(p) {
				return err
			}
			b, err := fs.ReadFile(src, p)
			if err != nil {
				return err
			}
			write(strings.TrimPrefix(strings.TrimPrefix(p, root), "/"), b)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	copyFS(policies.FS, ".", func(p string) bool { return strings.HasSuffix(p, ".rego") && !strings.HasSuffix(p, "_test.rego") })
	copyFS(bundles.Default, "default", func(string) bool { return true })
	for name, src := range extra {
		write(name, []byte(src))
	}
	return dir
}

// conflictOn is a second complete definition of decision that disagrees
// with the real one whenever cond holds: it compiles, and evaluating such
// an input raises eval_conflict_error.
func conflictOn(cond string) map[string]string {
	return map[string]string{"conflict.rego": "package agentauthz.main\n\n" +
		`decision := {"allow": false, "role": null, "denied_by": ["conflict"], "reasons": []} if ` + cond + "\n"}
}

func runPolicyCheck(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("AGENTAUTHZ_DATABASE_URL", "sqlite:"+t.TempDir()+"/t.db")
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"policy", "check"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestPolicyCheckRunsTheDecisionCases(t *testing.T) {
	t.Run("the embedded default passes its cases", func(t *testing.T) {
		code, out, errb := runPolicyCheck(t)
		if code != exitOK || !strings.HasPrefix(out, "ok: embedded") || !strings.Contains(out, "passed (the bundle's own)") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errb)
		}
	})
	t.Run("json names the cases", func(t *testing.T) {
		code, out, errb := runPolicyCheck(t, "--format=json", "--policy-bundle", stageBundle(t, nil))
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errb)
		}
		var doc struct {
			Cases int  `json:"decision_cases"`
			Own   bool `json:"cases_from_bundle"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Cases == 0 || !doc.Own {
			t.Fatalf("output %s (%v), want decision_cases > 0 from the bundle", out, err)
		}
	})
	t.Run("conflicting definitions of decision fail naming the case", func(t *testing.T) {
		dir := stageBundle(t, conflictOn(`input.ability == "whoami"`))
		code, out, errb := runPolicyCheck(t, "--policy-bundle", dir)
		if code != exitFailure {
			t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, exitFailure, out, errb)
		}
		if strings.Contains(out, "ok:") {
			t.Errorf("stdout says ok: %s", out)
		}
		for _, want := range []string{`decision case "whoami: an active user is answered": evaluation error:`, "eval_conflict_error", "conflict.rego"} {
			if !strings.Contains(errb, want) {
				t.Errorf("stderr does not mention %q:\n%s", want, errb)
			}
		}
	})
	t.Run("data that lets a stranger in fails the stranger's case", func(t *testing.T) {
		dir := stageBundle(t, nil)
		p := filepath.Join(dir, "data.json")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		abilities := doc["agentauthz"].(map[string]any)["config"].(map[string]any)["abilities"].(map[string]any)
		abilities["delete-agent"].(map[string]any)["min_role"] = nil
		if b, err = json.Marshal(doc); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, errb := runPolicyCheck(t, "--policy-bundle", dir)
		if code != exitFailure || !strings.Contains(errb, `decision case "delete-agent: a stranger is denied by its role": decided allow=true`) {
			t.Fatalf("exit %d, want %d naming the delete-agent stranger case; stderr:\n%s", code, exitFailure, errb)
		}
	})
}

// TestReadyzLeavesRotationWhilePolicyFails: a bundle that decides its cases
// but raises on an input they do not use gets activated; once its
// evaluations keep failing /readyz answers 503 with "policy": "failing" and
// agentauthz_policy_failing is 1, and one successful evaluation brings both back.
func TestReadyzLeavesRotationWhilePolicyFails(t *testing.T) {
	ctx := context.Background()
	dir := stageBundle(t, conflictOn(`input.tool == "boom"`))
	eng, err := policy.New(ctx, policy.Options{BundlePath: dir, FailStreak: 3, FailWindow: time.Hour})
	if err != nil {
		t.Fatalf("a bundle failing only on an input no case uses should activate: %v", err)
	}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := &app{st: st, engine: eng}
	m := metrics.New()
	m.PolicyHealth(func() bool { return eng.Failing() != nil }, func() uint64 { return eng.Health().Rejections })
	srv := httpapi.New(httpapi.Config{Logger: slog.New(slog.DiscardHandler)}, httpapi.Deps{Ready: a.ready, Metrics: m})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	decide := func(tool string) error {
		t.Helper()
		in, err := ast.InterfaceToValue(map[string]any{
			"ability": "authorize", "action": "use_tools", "tool": tool,
			"principal": map[string]any{"kind": "user", "id": "user:3", "audiences": []any{},
				"user": map[string]any{"id": 3, "roles": []any{"editor"}, "status": "active"}},
			"agent": map[string]any{"id": 7, "owner_id": 3, "status": "active", "tool_policy": nil,
				"owner": map[string]any{"id": 3, "roles": []any{"editor"}, "status": "active"}},
			"grants": []any{},
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = eng.Decide(ctx, in)
		return err
	}

	if code, body := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s before any failure, want 200", code, body)
	}
	for range 3 {
		if err := decide("boom"); err == nil {
			t.Fatal("the conflicting input decided")
		}
	}
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"policy":"failing"`) || !strings.Contains(body, `"store":"ok"`) {
		t.Fatalf("/readyz = %d %s after 3 failures, want 503 with policy failing and store ok", code, body)
	}
	if _, metricsBody := get("/metrics"); !strings.Contains(metricsBody, "agentauthz_policy_failing 1") {
		t.Errorf("/metrics does not report agentauthz_policy_failing 1:\n%s", grepLines(metricsBody, "agentauthz_policy"))
	}

	if err := decide("web_search"); err != nil {
		t.Fatalf("an ordinary input failed: %v", err)
	}
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s after a success, want 200", code, body)
	}
	if _, metricsBody := get("/metrics"); !strings.Contains(metricsBody, "agentauthz_policy_failing 0") {
		t.Errorf("/metrics does not report agentauthz_policy_failing 0:\n%s", grepLines(metricsBody, "agentauthz_policy"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
