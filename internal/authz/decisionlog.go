package authz

import (
	"context"
	"time"

	"github.com/agentauthz/agentauthz/internal/policy"
)

// DecisionLogger receives every decision the service asks for: memo hits,
// fresh evaluations, denials and evaluation failures alike.
type DecisionLogger interface {
	LogDecision(ctx context.Context, r policy.DecisionRecord)
}

// logDecision describes one decision for the decision log. It runs only
// when a log is configured (Config.DecisionLog): without one, evaluate
// does no work for it.
func (s *Service) logDecision(ctx context.Context, f *facts, start time.Time, d policy.Decision, memo bool, err error) {
	r := policy.DecisionRecord{
		Ability:  f.ability,
		Input:    f.input(),
		Decision: d,
		Err:      err,
		Revision: s.engine.Activation().Revision,
		Memo:     memo,
		Start:    start,
		Latency:  time.Since(start),
		Action:   f.action,
		Tool:     f.tool,
	}
	if p := f.principal; p != nil {
		r.PrincipalKind, r.PrincipalID = string(p.Kind), p.ID
		if p.Token != nil {
			r.TokenID = p.Token.ID
		}
	}
	if f.agent != nil {
		r.AgentID, r.OwnerID = f.agent.ID, f.agent.OwnerID
	}
	s.cfg.DecisionLog.LogDecision(ctx, r)
}
