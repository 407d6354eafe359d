package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Decision is data.agentauthz.main.decision for one input.
type Decision struct {
	// Allow is true only when the policy allowed the request.
	Allow bool `json:"allow"`
	// Role is the caller's role on input.agent, "" when it has none.
	Role string `json:"role"`
	// DeniedBy names every layer that denied; empty when allowed.
	DeniedBy []string `json:"denied_by"`
	// Reasons explains the decision in sentences.
	Reasons []string `json:"reasons"`
	// Capabilities are the effective capabilities (whoami only).
	Capabilities []string `json:"capabilities,omitempty"`
	// Accessible are the candidate agents the caller reaches (list-accessible-agents only).
	Accessible []Access `json:"accessible,omitempty"`
	// Scope is "all" or "related" (list-accessible-agents only).
	Scope string `json:"scope,omitempty"`
}

// Access is one agent a caller reaches and its role there.
type Access struct {
	// AgentID is the agent's id.
	AgentID int64 `json:"agent_id"`
	// Role is the caller's role on that agent.
	Role string `json:"role"`
}

// Decide evaluates the active policy for input; any error means the caller must deny.
func (e *Engine) Decide(ctx context.Context, input ast.Value) (Decision, error) {
	st := e.cur.Load()
	rs, err := st.decision.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		e.failed(ctx, st)
		return Decision{}, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	d, err := decisionFrom(rs)
	if err != nil {
		e.failed(ctx, st)
		return Decision{}, err
	}
	st.health.succeeded()
	return d, nil
}

// decisionFrom converts the one expected result by hand (no JSON round trip)
// and refuses anything that is not a well-formed decision object.
func decisionFrom(rs rego.ResultSet) (Decision, error) {
	switch {
	case len(rs) == 0:
		return Decision{}, ErrUndefined
	case len(rs) > 1:
		return Decision{}, fmt.Errorf("%w: %d results, want one", ErrPolicy, len(rs))
	case len(rs[0].Expressions) != 1:
		return Decision{}, fmt.Errorf("%w: %d expressions, want one", ErrPolicy, len(rs[0].Expressions))
	}
	obj, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return Decision{}, malformed("decision is %s, not an object", typeName(rs[0].Expressions[0].Value))
	}
	var d Decision
	allow, ok := obj["allow"].(bool)
	if !ok {
		return Decision{}, malformed("allow is %s, not a boolean", typeName(obj["allow"]))
	}
	d.Allow = allow
	var err error
	if d.Role, err = optString(obj, "role"); err != nil {
		return Decision{}, err
	}
	if d.DeniedBy, err = optStrings(obj, "denied_by"); err != nil {
		return Decision{}, err
	}
	if d.Allow && len(d.DeniedBy) > 0 {
		return Decision{}, malformed("allow is true but denied_by is %v", d.DeniedBy)
	}
	if d.Reasons, err = optStrings(obj, "reasons"); err != nil {
		return Decision{}, err
	}
	if d.Capabilities, err = optStrings(obj, "capabilities"); err != nil {
		return Decision{}, err
	}
	if d.Accessible, err = optAccess(obj); err != nil {
		return Decision{}, err
	}
	if d.Scope, err = optString(obj, "scope"); err != nil {
		return Decision{}, err
	}
	return d, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: malformed decision: "+format, append([]any{ErrPolicy}, args...)...)
}

// optString reads a string field that may be absent or null.
func optString(obj map[string]any, key string) (string, error) {
	switch v := obj[key].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", malformed("%s is %s, not a string", key, typeName(v))
	}
}

// optStrings reads an array (or set) of strings that may be absent or null.
func optStrings(obj map[string]any, key string) ([]string, error) {
	switch v := obj[key].(type) {
	case nil:
		return nil, nil
	case []any:
		out := make([]string, len(v))
		for i, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, malformed("%s[%d] is %s, not a string", key, i, typeName(x))
			}
			out[i] = s
		}
		return out, nil
	default:
		return nil, malformed("%s is %s, not an array of strings", key, typeName(v))
	}
}

// optAccess reads accessible: an array of {agent_id, role} objects.
func optAccess(obj map[string]any) ([]Access, error) {
	switch v := obj["accessible"].(type) {
	case nil:
		return nil, nil
	case []any:
		out := make([]Access, len(v))
		for i, x := range v {
			m, ok := x.(map[string]any)
			if !ok {
				return nil, malformed("accessible[%d] is %s, not an object", i, typeName(x))
			}
			id, ok := toInt64(m["agent_id"])
			if !ok {
				return nil, malformed("accessible[%d].agent_id is %v, not an integer", i, m["agent_id"])
			}
			role, ok := m["role"].(string)
			if !ok {
				return nil, malformed("accessible[%d].role is %s, not a string", i, typeName(m["role"]))
			}
			out[i] = Access{AgentID: id, Role: role}
		}
		return out, nil
	default:
		return nil, malformed("accessible is %s, not an array", typeName(v))
	}
}

func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return 0, false
		}
		return int64(n), true
	case int:
		return int64(n), true
	case int64:
		return n, true
	}
	return 0, false
}

// typeName names a decoded JSON value's type for error messages (never its content).
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null/absent"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64, int, int64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
