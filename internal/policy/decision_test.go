package policy

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecideFailsClosed(t *testing.T) {
	e, _ := newEngine(t, fixture("malformed"))
	tests := []struct {
		shape string
		want  error
	}{
		{"undefined", ErrUndefined},
		{"string", ErrPolicy},
		{"allow_not_bool", ErrPolicy},
		{"allow_missing", ErrPolicy},
		{"denied_by_not_array", ErrPolicy},
		{"allow_and_denied", ErrPolicy},
		{"accessible_bad_id", ErrPolicy},
		{"role_not_string", ErrPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.shape, func(t *testing.T) {
			d, err := e.Decide(context.Background(), input(t, map[string]any{"shape": tt.shape}))
			if !errors.Is(err, tt.want) {
				t.Errorf("Decide error = %v, want %v", err, tt.want)
			}
			if !errors.Is(err, ErrPolicy) {
				t.Errorf("error %v does not wrap ErrPolicy", err)
			}
			if d.Allow {
				t.Error("a failed decision allowed")
			}
		})
	}
	t.Run("well-formed decision still works", func(t *testing.T) {
		d, err := e.Decide(context.Background(), input(t, map[string]any{"shape": "ok"}))
		if err != nil || !d.Allow {
			t.Errorf("Decide = %+v, %v; want allow", d, err)
		}
	})
}

func TestDecideConvertsEveryField(t *testing.T) {
	e, _ := newEngine(t, fixture("valid"))
	whoami := showAgent("whoami", "viewer")
	whoami["principal"].(map[string]any)["user"].(map[string]any)["roles"] = []string{"administrator"}
	list := showAgent("list-accessible-agents", "viewer")
	list["agents"] = []any{map[string]any{"id": 7}, map[string]any{"id": 9}}
	owner := showAgent("delete-agent", "viewer")
	owner["principal"].(map[string]any)["user"].(map[string]any)["id"] = 3

	tests := []struct {
		name  string
		input map[string]any
		want  Decision
	}{
		{"viewer grant may show the agent", showAgent("show-agent", "viewer"),
			Decision{Allow: true, Role: "viewer", DeniedBy: []string{}, Reasons: []string{}}},
		{"viewer grant may not delete the agent", showAgent("delete-agent", "viewer"),
			Decision{Role: "viewer", DeniedBy: []string{"agent_role"}, Reasons: []string{"denied by agent_role"}}},
		{"owner is admin", owner,
			Decision{Allow: true, Role: "admin", DeniedBy: []string{}, Reasons: []string{}}},
		{"unknown ability denies with null role", map[string]any{"ability": "nope"},
			Decision{DeniedBy: []string{"ability"}, Reasons: []string{"denied by ability"}}},
		{"whoami returns sorted capabilities", whoami,
			Decision{Allow: true, Role: "viewer", DeniedBy: []string{}, Reasons: []string{}, Capabilities: []string{"manage_options", "read"}}},
		{"list-accessible-agents returns accessible and scope", list,
			Decision{Allow: true, Role: "viewer", DeniedBy: []string{}, Reasons: []string{}, Scope: "related",
				Accessible: []Access{{AgentID: 7, Role: "viewer"}, {AgentID: 9, Role: "viewer"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.Decide(context.Background(), input(t, tt.input))
			if err != nil {
				t.Fatal(err)
			}
			if got.Generation != e.Activation().Generation {
				t.Errorf("Decide says generation %d, the engine is at %d", got.Generation, e.Activation().Generation)
			}
			tt.want.Generation = got.Generation
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	e, _ := newEngine(t, fixture("valid"))
	d, lines, err := e.Explain(context.Background(), input(t, showAgent("show-agent", "viewer")))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allow {
		t.Errorf("Explain decision = %+v, want allow", d)
	}
	if len(lines) == 0 {
		t.Fatal("Explain returned no trace lines")
	}
	if !containsAny(lines, "main.rego:") {
		t.Errorf("trace lines carry no file:line locations:\n%v", lines)
	}

	t.Run("failed decision still returns the trace", func(t *testing.T) {
		e, _ := newEngine(t, fixture("malformed"))
		_, lines, err := e.Explain(context.Background(), input(t, map[string]any{"shape": "undefined"}))
		if !errors.Is(err, ErrUndefined) {
			t.Errorf("error = %v, want ErrUndefined", err)
		}
		if len(lines) == 0 {
			t.Error("no trace lines for an undefined decision")
		}
	})
}

func containsAny(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func BenchmarkDecide(b *testing.B) {
	e, _ := newEngine(b, fixture("valid"))
	in := input(b, showAgent("show-agent", "operator"))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := e.Decide(ctx, in)
		if err != nil || !d.Allow {
			b.Fatalf("Decide = %+v, %v", d, err)
		}
	}
}
