package policy

import (
	"context"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/lineage"
)

// Explain evaluates like Decide and also returns the evaluation trace, one line per step with file:line.
//
// The trace shows input values, so it is for the operator's eyes (CLI, debug
// endpoints), never for logs. When the decision fails the trace is still
// returned with the error: it is how one finds out why.
func (e *Engine) Explain(ctx context.Context, input ast.Value) (Decision, []string, error) {
	st := e.cur.Load()
	if st == nil {
		return Decision{}, nil, ErrNoBundle
	}
	buf := topdown.NewBufferTracer()
	rs, err := evalQuery(ctx, st.decision, input, rego.EvalQueryTracer(buf))
	lines := traceLines(*buf)
	if err != nil {
		e.failed(ctx, st)
		return Decision{}, lines, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	d, err := decisionFrom(rs)
	if err != nil {
		e.failed(ctx, st)
		return d, lines, err
	}
	st.health.succeeded()
	return d, lines, nil
}

// traceLines renders a full trace the way `opa eval --explain=full` does.
func traceLines(events []*topdown.Event) []string {
	var sb strings.Builder
	topdown.PrettyTraceWithLocation(&sb, lineage.Full(events))
	out := strings.Split(strings.TrimRight(sb.String(), "\n"), "\n")
	if len(out) == 1 && out[0] == "" {
		return nil
	}
	return out
}
