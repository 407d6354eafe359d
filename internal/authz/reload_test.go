package authz_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/bundles"
	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/credential"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/token"
	"github.com/agentauthz/agentauthz/policies"
)

// stageDefaultBundle copies the embedded default policy and data into a
// directory bundle a test may edit.
func stageDefaultBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := fs.WalkDir(policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.rego") {
			return err
		}
		b, err := policies.FS.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"data.json", ".manifest"} {
		b, err := bundles.Default.ReadFile("default/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// editData rewrites the bundle's data document through fn.
func editData(t *testing.T, dir string, fn func(config map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "data.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	fn(doc["agentauthz"].(map[string]any)["config"].(map[string]any))
	if b, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRoleLosingACapabilityChangesDecisionsAfterReload: a policy author
// edits bundle data, the engine reloads, and the next decision follows the
// data — no Go change, no rebuild, no restart. The memoized decision of the
// token does not survive the reload either.
func TestRoleLosingACapabilityChangesDecisionsAfterReload(t *testing.T) {
	ctx := context.Background()
	dir := stageDefaultBundle(t)
	svc, st, eng := newService(t, dir)
	owner, err := st.CreateUser(ctx, model.User{Login: "ed", Roles: []string{"editor"}, Status: model.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	agent, err := st.CreateAgent(ctx, model.Agent{Slug: "bot", Name: "bot", OwnerID: owner.ID, Status: model.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := token.Generate(token.DefaultPrefix, agent.Slug)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateToken(ctx, model.Token{AgentID: agent.ID, Hash: token.Hash(raw), Prefix: token.Hint(raw)}); err != nil {
		t.Fatal(err)
	}
	creds := credential.New(st, credential.Options{CacheTTL: time.Hour, TouchInterval: time.Hour})
	t.Cleanup(func() { creds.Close(ctx) })
	ask := func() authz.AuthorizeResult {
		t.Helper()
		// Through the credential cache, so the decision memo is in play.
		p, err := creds.LookupRaw(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		res, err := svc.Authorize(ctx, p, authz.AuthorizeRequest{Action: "use_tools", Tool: ptr("web_search")})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := ask(); !res.Allow {
		t.Fatalf("before the edit an editor's token may use tools; got %v %v", res.DeniedBy, res.Reasons)
	}
	if res := ask(); !res.Allow || !res.Memoized {
		t.Fatalf("the second identical question should be answered from the memo; allow=%v memoized=%v", res.Allow, res.Memoized)
	}
	rev := eng.Activation().Revision

	editData(t, dir, func(config map[string]any) {
		editor := config["roles"].(map[string]any)["editor"].(map[string]any)
		delete(editor, "datamachine_use_tools")
	})
	if err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if eng.Activation().Revision == rev {
		t.Fatal("the reload did not change the revision")
	}
	res := ask()
	if res.Allow || !contains(res.DeniedBy, "owner_ceiling") {
		t.Fatalf("after editors lost datamachine_use_tools: allow=%v denied_by=%v, want a deny by owner_ceiling", res.Allow, res.DeniedBy)
	}

	// A broken edit is rejected and the last good policy keeps serving.
	editData(t, dir, func(config map[string]any) { config["agent_roles"] = "not an object" })
	if err := eng.Reload(ctx); err == nil {
		t.Fatal("a bundle with malformed agent_roles was accepted")
	}
	if res := ask(); res.Allow || !contains(res.DeniedBy, "owner_ceiling") {
		t.Fatalf("after a rejected reload the previous policy must keep serving; got allow=%v %v", res.Allow, res.DeniedBy)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
