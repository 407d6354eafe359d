package policy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
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
	// ID names this one decision for audit correlation: the answer, the
	// access log and the decision log carry the same id. The service sets
	// it for every decision it makes, memo hits included; a memoized
	// decision is stored without one.
	ID string `json:"-"`
	// Generation is the activation that decided (Decide sets it), so a
	// caller that memoizes under the generation it read beforehand can
	// tell whether a reload came in between.
	Generation uint64 `json:"-"`
	// Capabilities are the effective capabilities (whoami only).
	Capabilities []string `json:"capabilities,omitempty"`
	// Accessible are the candidate agents the caller reaches (list-accessible-agents only).
	Accessible []Access `json:"accessible,omitempty"`
	// Scope is "all" or "related" (list-accessible-agents only).
	Scope string `json:"scope,omitempty"`
	// Route is the route the forward-auth request resolved to (forward-auth only, when allowed).
	Route *Route `json:"route,omitempty"`
}

// Route is what a gateway's original request means: the action, and the
// agent and tool when the route names them.
type Route struct {
	// Agent is the agent slug or id; "" when the route names none (a token's own agent).
	Agent string `json:"agent,omitempty"`
	// Action is the runtime action.
	Action string `json:"action"`
	// Tool is the tool, nil when the route names none.
	Tool *string `json:"tool,omitempty"`
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
	if st == nil {
		return Decision{}, ErrNoBundle
	}
	rs, err := evaluate(ctx, st, st.decision, input)
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
	d.Generation = st.act.Generation
	return d, nil
}

// evalQuery is one evaluation of the prepared decision query: Decide,
// Explain (with a tracer) and the decision cases all go through it, so the
// cases check exactly what serves.
func evalQuery(ctx context.Context, pq rego.PreparedEvalQuery, input ast.Value, extra ...rego.EvalOption) (rego.ResultSet, error) {
	return evaluate(ctx, nil, pq, input, extra...)
}

// evaluate is evalQuery for the query of st (nil: of no activation yet),
// reusing what earlier evaluations read from st's store.
func evaluate(ctx context.Context, st *state, pq rego.PreparedEvalQuery, input ast.Value, extra ...rego.EvalOption) (rego.ResultSet, error) {
	ev := getEvaluation(st)
	defer ev.release()
	opts := append(ev.options(), rego.EvalParsedInput(input))
	if ctx.Done() == nil {
		// Nothing can cancel this context: skip the watcher goroutine
		// rego would start for it.
		opts = append(opts, evalNeverCancelled)
	} else {
		c := topdown.NewCancel()
		stop := context.AfterFunc(ctx, c.Cancel)
		defer stop()
		opts = append(opts, rego.EvalExternalCancel(c))
	}
	return pq.Eval(ctx, append(opts, extra...)...)
}

// Evaluation options shared by every evaluation (they hold no per-call state):
// no metrics are collected (nothing reads them), the result stays an
// ast.Value (decisionFrom reads it directly, with no conversion to Go maps),
// and a context that cannot be cancelled needs no cancellation watcher.
var (
	evalNoMetrics      = rego.EvalMetrics(metrics.NoOp())
	evalRawResult      = rego.EvalGenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t.Value, nil })
	evalNeverCancelled = rego.EvalExternalCancel(topdown.NewCancel())
)

// decisionFrom reads the one expected result (an ast.Value, see
// evalRawResult) and refuses anything that is not a well-formed decision
// object.
func decisionFrom(rs rego.ResultSet) (Decision, error) {
	switch {
	case len(rs) == 0:
		return Decision{}, ErrUndefined
	case len(rs) > 1:
		return Decision{}, fmt.Errorf("%w: %d results, want one", ErrPolicy, len(rs))
	case len(rs[0].Expressions) != 1:
		return Decision{}, fmt.Errorf("%w: %d expressions, want one", ErrPolicy, len(rs[0].Expressions))
	}
	v, _ := rs[0].Expressions[0].Value.(ast.Value)
	obj, ok := v.(ast.Object)
	if !ok {
		return Decision{}, malformed("decision is %s, not an object", typeName(v))
	}
	var d Decision
	allow, ok := field(obj, keyAllow).(ast.Boolean)
	if !ok {
		return Decision{}, malformed("allow is %s, not a boolean", typeName(field(obj, keyAllow)))
	}
	d.Allow = bool(allow)
	var err error
	if d.Role, err = optString(obj, keyRole); err != nil {
		return Decision{}, err
	}
	if d.DeniedBy, err = optStrings(obj, keyDeniedBy); err != nil {
		return Decision{}, err
	}
	if d.Allow && len(d.DeniedBy) > 0 {
		return Decision{}, malformed("allow is true but denied_by is %v", d.DeniedBy)
	}
	if d.Reasons, err = optStrings(obj, keyReasons); err != nil {
		return Decision{}, err
	}
	if d.Capabilities, err = optStrings(obj, keyCapabilities); err != nil {
		return Decision{}, err
	}
	if d.Accessible, err = optAccess(obj); err != nil {
		return Decision{}, err
	}
	if d.Scope, err = optString(obj, keyScope); err != nil {
		return Decision{}, err
	}
	if d.Route, err = optRoute(obj); err != nil {
		return Decision{}, err
	}
	return d, nil
}

// The keys of the decision document, as terms to look them up with.
var (
	keyAllow        = ast.StringTerm("allow")
	keyRole         = ast.StringTerm("role")
	keyDeniedBy     = ast.StringTerm("denied_by")
	keyReasons      = ast.StringTerm("reasons")
	keyCapabilities = ast.StringTerm("capabilities")
	keyAccessible   = ast.StringTerm("accessible")
	keyScope        = ast.StringTerm("scope")
	keyAgentID      = ast.StringTerm("agent_id")
	keyRoute        = ast.StringTerm("route")
	keyAgent        = ast.StringTerm("agent")
	keyAction       = ast.StringTerm("action")
	keyTool         = ast.StringTerm("tool")
)

// field is obj[key], nil when absent.
func field(obj ast.Object, key *ast.Term) ast.Value {
	if t := obj.Get(key); t != nil {
		return t.Value
	}
	return nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: malformed decision: "+format, append([]any{ErrPolicy}, args...)...)
}

// optString reads a string field that may be absent or null.
func optString(obj ast.Object, key *ast.Term) (string, error) {
	switch v := field(obj, key).(type) {
	case nil, ast.Null:
		return "", nil
	case ast.String:
		return string(v), nil
	default:
		return "", malformed("%s is %s, not a string", key.Value.(ast.String), typeName(v))
	}
}

// optStrings reads an array (or set) of strings that may be absent or null.
func optStrings(obj ast.Object, key *ast.Term) ([]string, error) {
	name := string(key.Value.(ast.String))
	var out []string
	var bad error
	collect := func(i int, t *ast.Term) {
		s, ok := t.Value.(ast.String)
		if !ok {
			if bad == nil {
				bad = malformed("%s[%d] is %s, not a string", name, i, typeName(t.Value))
			}
			return
		}
		out = append(out, string(s))
	}
	switch v := field(obj, key).(type) {
	case nil, ast.Null:
		return nil, nil
	case *ast.Array:
		out = make([]string, 0, v.Len())
		for i := range v.Len() {
			collect(i, v.Elem(i))
		}
	case ast.Set:
		out = make([]string, 0, v.Len())
		i := 0
		v.Foreach(func(t *ast.Term) { collect(i, t); i++ })
	default:
		return nil, malformed("%s is %s, not an array of strings", name, typeName(v))
	}
	if bad != nil {
		return nil, bad
	}
	return out, nil
}

// optAccess reads accessible: an array of {agent_id, role} objects.
func optAccess(obj ast.Object) ([]Access, error) {
	switch v := field(obj, keyAccessible).(type) {
	case nil, ast.Null:
		return nil, nil
	case *ast.Array:
		out := make([]Access, v.Len())
		for i := range v.Len() {
			m, ok := v.Elem(i).Value.(ast.Object)
			if !ok {
				return nil, malformed("accessible[%d] is %s, not an object", i, typeName(v.Elem(i).Value))
			}
			id, ok := toInt64(field(m, keyAgentID))
			if !ok {
				return nil, malformed("accessible[%d].agent_id is %v, not an integer", i, field(m, keyAgentID))
			}
			role, ok := field(m, keyRole).(ast.String)
			if !ok {
				return nil, malformed("accessible[%d].role is %s, not a string", i, typeName(field(m, keyRole)))
			}
			out[i] = Access{AgentID: id, Role: string(role)}
		}
		return out, nil
	default:
		return nil, malformed("accessible is %s, not an array", typeName(v))
	}
}

func toInt64(v ast.Value) (int64, bool) {
	n, ok := v.(ast.Number)
	if !ok {
		return 0, false
	}
	return n.Int64()
}

// typeName names a decision value's type for error messages (never its content).
func typeName(v any) string {
	switch v.(type) {
	case nil, ast.Null:
		return "null/absent"
	case ast.Boolean, bool:
		return "a boolean"
	case ast.String, string:
		return "a string"
	case ast.Number, json.Number, float64, int, int64:
		return "a number"
	case *ast.Array, ast.Set, []any:
		return "an array"
	case ast.Object, map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// optRoute reads route: {action, agent?, tool?} (strings), absent or null
// when the decision names none.
func optRoute(obj ast.Object) (*Route, error) {
	var m ast.Object
	switch v := field(obj, keyRoute).(type) {
	case nil, ast.Null:
		return nil, nil
	case ast.Object:
		m = v
	default:
		return nil, malformed("route is %s, not an object", typeName(v))
	}
	action, ok := field(m, keyAction).(ast.String)
	if !ok || action == "" {
		return nil, malformed("route.action is %s, not a non-empty string", typeName(field(m, keyAction)))
	}
	r := &Route{Action: string(action)}
	var err error
	if r.Agent, err = optString(m, keyAgent); err != nil {
		return nil, err
	}
	switch v := field(m, keyTool).(type) {
	case nil, ast.Null:
	case ast.String:
		tool := string(v)
		r.Tool = &tool
	default:
		return nil, malformed("route.tool is %s, not a string", typeName(v))
	}
	return r, nil
}

// NewDecisionID draws a decision id: 96 random bits, hex.
func NewDecisionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
