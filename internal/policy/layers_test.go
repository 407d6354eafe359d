package policy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestNewDenialLayerAppliesToEveryCaller adds one authorize layer the
// obvious way -- a copy of the real policies with one more denials rule at
// the end of the layers file -- and shows that it denies the agent's owner,
// the owner's token on its own agent and an admin grantee alike: there is
// no second copy of the layers (no owner fast path) for a caller to slip
// through.
func TestNewDenialLayerAppliesToEveryCaller(t *testing.T) {
	dir := stageDefault(t, true)
	layers := filepath.Join(dir, "agentauthz", "actions", "actions.rego")
	src, err := os.ReadFile(layers)
	if err != nil {
		t.Fatalf("the authorize layers file moved: %v", err)
	}
	rule := `
# Nobody runs the shell tool, whoever asks.
denials contains {"by": "no_shell", "reason": "the shell tool is disabled"} if {
	input.tool == "shell"
}
`
	ctx := context.Background()
	before, _ := newEngine(t, dir)
	if err := os.WriteFile(layers, append(src, rule...), 0o644); err != nil {
		t.Fatal(err)
	}
	after, _ := newEngine(t, dir)

	editor := map[string]any{"id": 3, "roles": []string{"editor"}, "status": "active"}
	subscriber := map[string]any{"id": 5, "roles": []string{"subscriber"}, "status": "active"}
	agent := map[string]any{"id": 7, "owner_id": 3, "status": "active", "tool_policy": nil, "owner": editor}
	callers := []struct {
		name      string
		principal map[string]any
		grants    []any
	}{
		{"owner user", map[string]any{"kind": "user", "id": "user:3", "user": editor}, []any{}},
		{"own-agent token", map[string]any{"kind": "token", "id": "token:12", "user": editor,
			"token": map[string]any{"id": 12, "agent_id": 7, "capabilities": nil, "expires_at": nil}}, []any{}},
		{"admin grantee", map[string]any{"kind": "user", "id": "user:5", "user": subscriber},
			[]any{map[string]any{"agent_id": 7, "principal": "user:5", "role": "admin"}}},
	}
	for _, c := range callers {
		for _, tool := range []string{"shell", "web_search"} {
			in := input(t, map[string]any{
				"ability": "authorize", "action": "use_tools", "tool": tool,
				"principal": c.principal, "agent": agent, "grants": c.grants,
			})
			was, err := before.Decide(ctx, in)
			if err != nil || !was.Allow {
				t.Fatalf("%s, %s, without the new layer: %+v, %v; want allow", c.name, tool, was, err)
			}
			got, err := after.Decide(ctx, in)
			if err != nil {
				t.Fatalf("%s, %s: %v", c.name, tool, err)
			}
			if tool == "web_search" {
				if !got.Allow {
					t.Errorf("%s, %s: %+v; the new layer must not deny it", c.name, tool, got)
				}
				continue
			}
			if got.Allow || !slices.Equal(got.DeniedBy, []string{"no_shell"}) || got.Role != "admin" {
				t.Errorf("%s, %s: %+v; want denied_by [no_shell] with role admin", c.name, tool, got)
			}
		}
	}
}
