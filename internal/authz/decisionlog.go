package authz

import (
	"context"
	"time"

	"github.com/agentauthz/agentauthz/internal/policy"
)

// DecisionLogger receives every decision the service asks for: memo hits,
// fresh evaluations, denials and evaluation failures alike, the probes of
// searches (marked Probe) and the AuthZEN denials decided before the policy
// could be asked (marked Unevaluated).
type DecisionLogger interface {
	LogDecision(ctx context.Context, r policy.DecisionRecord)
}

// decisionRecord describes one decision for the decision log, but for its
// input. It runs only when a log is configured (Config.DecisionLog):
// without one, evaluate does no work for it.
func decisionRecord(f *facts, start time.Time, d policy.Decision, memo bool, err error, revision string) policy.DecisionRecord {
	r := policy.DecisionRecord{
		Ability:  f.ability,
		Decision: d,
		Err:      err,
		Revision: revision,
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
	return r
}

// revisionOf names the bundle revision of a decision asked of act: act's,
// unless the engine answered from a later activation (a reload between
// reading act and deciding), which is named only while it is still the
// active one ("" when it is gone too). Reading the activation after the
// decision instead could name a bundle that decided nothing.
func (s *Service) revisionOf(act policy.Activation, d policy.Decision, memo bool, err error) string {
	if memo || err != nil || d.Generation == act.Generation {
		return act.Revision
	}
	if now := s.engine.Activation(); now.Generation == d.Generation {
		return now.Revision
	}
	return ""
}
