package authz

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/agentauthz/agentauthz/internal/policy"
)

// recordingLog keeps every decision record it is given.
type recordingLog struct {
	mu      sync.Mutex
	records []policy.DecisionRecord
}

func (l *recordingLog) LogDecision(_ context.Context, r policy.DecisionRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r)
}

// RecordingLog lets the external tests record decisions too.
type RecordingLog = recordingLog

// Records returns the decisions logged so far.
func (l *recordingLog) Records() []policy.DecisionRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.records)
}

func (l *recordingLog) last(t *testing.T, n int) policy.DecisionRecord {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.records) != n {
		t.Fatalf("%d decisions logged, want %d", len(l.records), n)
	}
	return l.records[n-1]
}

// failingEngine fails every evaluation.
type failingEngine struct{ act policy.Activation }

func (e failingEngine) Decide(context.Context, ast.Value) (policy.Decision, error) {
	return policy.Decision{}, policy.ErrUndefined
}
func (e failingEngine) Activation() policy.Activation { return e.act }

// TestDecisionLogRecordsEveryDecision: fresh evaluations, memo hits,
// denials and evaluation failures are each logged once, with who asked
// what, the answer, the revision and which path answered.
func TestDecisionLogRecordsEveryDecision(t *testing.T) {
	ctx := context.Background()
	eng, err := policy.New(ctx, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := &recordingLog{}
	svc := New(nil, eng, nil, Config{DecisionLog: log})
	vs := variants()
	allowed, denied := vs[0], vs[21] // vs[21]: the agent is inactive
	cases := []struct {
		name      string
		svc       *Service
		f         *facts
		memo      bool
		allow     bool
		failed    bool
		revision  string
		principal string
	}{
		{"fresh evaluation", svc, allowed, false, true, false, eng.Activation().Revision, "token:12"},
		{"memo hit", svc, allowed, true, true, false, eng.Activation().Revision, "token:12"},
		{"denial", svc, denied, false, false, false, eng.Activation().Revision, "token:12"},
		{"evaluation failure", New(nil, failingEngine{policy.Activation{Revision: "broken"}}, nil, Config{DecisionLog: log}), allowed, false, false, true, "broken", "token:12"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, memo, err := tc.svc.evaluate(ctx, tc.f)
			r := log.last(t, i+1)
			if r.Memo != memo || memo != tc.memo {
				t.Errorf("logged memo %v, evaluate memo %v, want %v", r.Memo, memo, tc.memo)
			}
			if (r.Err != nil) != tc.failed || (err != nil) != tc.failed {
				t.Errorf("logged error %v, evaluate error %v, want failure %v", r.Err, err, tc.failed)
			}
			if r.Decision.Allow != d.Allow || d.Allow != tc.allow {
				t.Errorf("logged allow %v, decided %v, want %v", r.Decision.Allow, d.Allow, tc.allow)
			}
			if r.Revision != tc.revision || r.Ability != tc.f.ability || r.PrincipalID != tc.principal || r.PrincipalKind != "token" ||
				r.TokenID != 12 || r.AgentID != 7 || r.OwnerID != 3 || r.Action != "use_tools" || r.Tool != "web_search" {
				t.Errorf("record %+v does not describe the decision", r)
			}
			if r.Input == nil || r.Input.Compare(tc.f.input()) != 0 {
				t.Errorf("logged input %v, want the policy input", r.Input)
			}
			if r.Decision.ID == "" || r.Decision.ID != d.ID {
				t.Errorf("logged decision id %q, the answer's %q: want one id, drawn for every decision", r.Decision.ID, d.ID)
			}
			if r.Start.IsZero() || r.Latency <= 0 {
				t.Errorf("start %v, latency %v: want both", r.Start, r.Latency)
			}
			if !tc.allow && !tc.failed && len(r.Decision.DeniedBy) == 0 {
				t.Errorf("denial logged without denied_by: %+v", r.Decision)
			}
		})
	}
}

// reloadingEngine is at activation from while it decides, and answers
// from activation decider; afterwards it is at activation to: a reload
// between reading the activation and deciding, and one during the decision.
type reloadingEngine struct {
	mu       sync.Mutex
	from, to policy.Activation
	decider  uint64
	decided  bool
}

func (e *reloadingEngine) Decide(context.Context, ast.Value) (policy.Decision, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.decided = true
	return policy.Decision{Allow: true, Generation: e.decider}, nil
}

func (e *reloadingEngine) Activation() policy.Activation {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.decided {
		return e.to
	}
	return e.from
}

// TestDecisionLogNamesTheBundleThatDecided: the logged revision is the
// one that decided, not whichever is active once the decision is logged.
func TestDecisionLogNamesTheBundleThatDecided(t *testing.T) {
	old := policy.Activation{Revision: "old", Generation: 1}
	next := policy.Activation{Revision: "new", Generation: 2}
	later := policy.Activation{Revision: "later", Generation: 3}
	cases := []struct {
		name     string
		eng      *reloadingEngine
		revision string
	}{
		{"a reload during the decision: the old bundle decided", &reloadingEngine{from: old, to: next, decider: 1}, "old"},
		{"no reload", &reloadingEngine{from: old, to: old, decider: 1}, "old"},
		{"a reload before the decision: the new bundle decided", &reloadingEngine{from: old, to: next, decider: 2}, "new"},
		{"the deciding bundle already replaced: unknown, never another", &reloadingEngine{from: old, to: later, decider: 2}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log := &recordingLog{}
			svc := New(nil, tc.eng, nil, Config{DecisionLog: log})
			if _, _, err := svc.evaluate(context.Background(), variants()[0]); err != nil {
				t.Fatal(err)
			}
			if r := log.last(t, 1); r.Revision != tc.revision {
				t.Fatalf("logged revision %q, want %q", r.Revision, tc.revision)
			}
		})
	}
}
