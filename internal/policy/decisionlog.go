package policy

import (
	"context"
	"log/slog"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
	"github.com/open-policy-agent/opa/v1/server"
)

// DecisionRecord is one decision as the decision log describes it. It
// carries identifiers only: never a token or its hash (the policy input
// holds neither: a token principal is its id, agent, capabilities and expiry).
type DecisionRecord struct {
	// Ability is the ability asked about ("authorize", "create-token", ...).
	Ability string
	// PrincipalKind and PrincipalID name the caller ("token", "token:12").
	PrincipalKind, PrincipalID string
	// TokenID is the caller's token id; 0 when the caller is no token.
	TokenID int64
	// AgentID and OwnerID are the agent the decision is about and its owner; 0 when none.
	AgentID, OwnerID int64
	// Action and Tool are the runtime question's (authorize); "" when none.
	Action, Tool string
	// Input is the policy input document.
	Input ast.Value
	// Decision is the answer; Err is why there was none (the caller denied).
	Decision Decision
	Err      error
	// Revision is the bundle revision that decided (or was asked).
	Revision string
	// Memo is true when the decision memo answered without evaluating.
	Memo bool
	// Unevaluated is true when the service answered without asking the
	// policy (an AuthZEN subject or resource that does not exist).
	Unevaluated bool
	// Probe is true for a question about a synthetic agent or user that
	// a search asks to find its candidates, not a decision about a caller.
	Probe bool
	// Start is when the decision began; Latency how long it took.
	Start   time.Time
	Latency time.Duration
}

// DecisionLog ships decisions through OPA's decision-log plugin: its
// buffering, batching, upload, console output and mask and drop rules.
type DecisionLog struct {
	plugin *logs.Plugin
	log    *slog.Logger
}

// DecisionLog returns the decision log, or nil when decision_logs is not configured.
func (p *Plugins) DecisionLog() *DecisionLog {
	if p == nil || p.logs == nil {
		return nil
	}
	return &DecisionLog{plugin: p.logs, log: p.log}
}

// decisionPath is the decision's path in OPA's terms (the event's "path").
const decisionPath = "agentauthz/main/decision"

// LogDecision hands r to the plugin; a failure is logged, never returned:
// a decision is not undone because its log entry could not be written.
func (l *DecisionLog) LogDecision(ctx context.Context, r DecisionRecord) {
	id := r.Decision.ID
	if id == "" {
		id = NewDecisionID()
	}
	var input any
	if r.Input != nil {
		var err error
		if input, err = ast.JSON(r.Input); err != nil {
			l.log.Error("decision log: input not serialisable", "decision_id", id, "error", err)
			return
		}
	}
	info := &server.Info{
		DecisionID: id,
		Path:       decisionPath,
		Timestamp:  r.Start.UTC(),
		Input:      &input,
		InputAST:   r.Input,
		Revision:   r.Revision,
		Bundles:    map[string]server.BundleInfo{PluginName: {Revision: r.Revision}},
		Error:      r.Err,
		Custom:     r.custom(),
	}
	if r.Err == nil {
		var result any = map[string]any{
			"allow": r.Decision.Allow, "role": r.Decision.Role,
			"denied_by": orEmpty(r.Decision.DeniedBy), "reasons": orEmpty(r.Decision.Reasons),
		}
		info.Results = &result
	}
	if err := l.plugin.Log(ctx, info); err != nil {
		l.log.Error("decision log entry not written", "decision_id", id, "error", err)
	}
}

// custom is the entry's "custom" object: who asked what, and how it was answered.
func (r *DecisionRecord) custom() map[string]any {
	c := map[string]any{
		"ability":    r.Ability,
		"principal":  map[string]any{"kind": r.PrincipalKind, "id": r.PrincipalID},
		"memo":       r.Memo,
		"latency_ns": r.Latency.Nanoseconds(),
	}
	ids := []struct {
		name string
		v    int64
	}{{"token_id", r.TokenID}, {"agent_id", r.AgentID}, {"owner_id", r.OwnerID}}
	for _, x := range ids {
		if x.v != 0 {
			c[x.name] = x.v
		}
	}
	if r.Action != "" {
		c["action"] = r.Action
	}
	if r.Tool != "" {
		c["tool"] = r.Tool
	}
	if r.Unevaluated {
		c["evaluated"] = false
	}
	if r.Probe {
		c["probe"] = true
	}
	return c
}

func orEmpty(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}
