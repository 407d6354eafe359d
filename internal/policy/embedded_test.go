package policy

import (
	"context"
	"testing"
)

// TestEmbeddedDefaultActivates uses THE REAL embedded default bundle
// (policies/agentauthz/**/*.rego and bundles/default), not a fixture. It checks only that
// the bundle activates and answers a well-formed decision: the policy's
// behaviour is pinned by the `opa test` suites beside the Rego.
func TestEmbeddedDefaultActivates(t *testing.T) {
	e, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatalf("the embedded default bundle does not activate: %v", err)
	}
	act := e.Activation()
	if act.Source != "embedded" || act.Generation != 1 || len(act.AgentRoles) == 0 {
		t.Errorf("Activation = %+v", act)
	}
	in := input(t, map[string]any{
		"ability":   "whoami",
		"principal": map[string]any{"kind": "user", "id": "user:3", "user": map[string]any{"id": 3, "roles": []string{"subscriber"}, "status": "active"}},
	})
	d, err := e.Decide(context.Background(), in)
	if err != nil {
		t.Fatalf("Decide(whoami): %v", err)
	}
	if d.Allow && len(d.DeniedBy) > 0 {
		t.Errorf("decision allows and denies at once: %+v", d)
	}
	if !d.Allow && len(d.DeniedBy) == 0 {
		t.Errorf("decision denies without saying by what: %+v", d)
	}
}
