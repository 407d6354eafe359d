package policy

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ErrFailing is wrapped by Failing's answer: the active policy fails at
// evaluation, so this replica denies (503) what it is asked and should leave
// the load balancer's rotation.
var ErrFailing = errors.New("policy: the active bundle is failing at evaluation")

// Defaults of Options.FailStreak and Options.FailWindow.
const (
	defaultFailStreak = 5
	defaultFailWindow = 30 * time.Second
)

// evalHealth is the outcome record of one activation's evaluations. Decide
// writes it: a failure stores a count and a time; a success only loads the
// streak (and stores 0 when it was not 0 already), so the hot path adds no
// contended write.
type evalHealth struct {
	streak   atomic.Int64 // consecutive failed evaluations; 0 after any success
	lastFail atomic.Int64 // unix nanoseconds of the latest failure
	failures atomic.Uint64
}

func (h *evalHealth) succeeded() {
	if h.streak.Load() != 0 {
		h.streak.Store(0)
	}
}

// failed records a failed evaluation unless it failed because the caller
// gave up (its context was cancelled or timed out): that is not the policy's
// fault.
func (e *Engine) failed(ctx context.Context, st *state) {
	if ctx.Err() != nil {
		return
	}
	st.health.lastFail.Store(time.Now().UnixNano())
	st.health.streak.Add(1)
	st.health.failures.Add(1)
	e.evalFailures.Add(1)
}

// Failing returns nil while the active policy decides, or an error wrapping
// ErrFailing while it counts as failing:
//
// the last Options.FailStreak evaluations of the active bundle (Decide,
// Explain; not those the caller cancelled) all failed — an evaluation
// error, an undefined or a malformed decision — and the latest of them is
// less than Options.FailWindow old.
//
// It recovers as soon as one evaluation succeeds, when a new bundle is
// activated (the record is per activation), or when FailWindow passes
// without a further failure. The window matters: a replica taken out of
// rotation receives no traffic and so no successful evaluation; after the
// window it reports ready again and live traffic re-tests it, which also
// bounds what a client sending inputs that happen to fail can do to a
// replica. A policy that fails only on some inputs interleaves failures
// with successes and stays ready: every failure is still counted in
// agentauthz_decisions_total{result="error"} and logged.
//
// The candidate's decision cases already ran at activation, so a bundle
// that fails on every input is never activated; Failing covers what the
// cases cannot: inputs they do not foresee and policies whose answers
// change with time.
func (e *Engine) Failing() error {
	st := e.cur.Load()
	if st == nil {
		return fmt.Errorf("%w: no active bundle", ErrFailing)
	}
	n := st.health.streak.Load()
	if n < int64(e.opts.FailStreak) {
		return nil
	}
	age := time.Since(time.Unix(0, st.health.lastFail.Load()))
	if age >= e.opts.FailWindow {
		return nil
	}
	return fmt.Errorf("%w: the last %d evaluations of revision %s failed, the latest %s ago",
		ErrFailing, n, st.act.Revision, age.Round(time.Millisecond))
}

// Health is a snapshot of the engine's counters, for metrics.
type Health struct {
	// Failing is Failing() != nil.
	Failing bool
	// EvaluationFailures counts failed evaluations since start (all activations).
	EvaluationFailures uint64
	// Rejections counts candidate bundles refused since start (load, compile,
	// validation or decision cases), at reload or by ActivateBundle.
	Rejections uint64
}

// Health returns the current counters.
func (e *Engine) Health() Health {
	return Health{
		Failing:            e.Failing() != nil,
		EvaluationFailures: e.evalFailures.Load(),
		Rejections:         e.rejections.Load(),
	}
}
