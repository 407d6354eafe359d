package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentauthz/agentauthz/internal/changes"
	"github.com/agentauthz/agentauthz/internal/view"
)

// readiness is a /readyz answer with named checks ({"store": "ok",
// "policy": "failing"}); Error() carries the raw causes, which httpapi logs
// and never serves. With serving set the server is ready all the same
// (httpapi answers 200 with that status and the checks).
type readiness struct {
	checks  map[string]string
	err     error
	serving string // "", "ok" or "degraded"
}

func (n *readiness) Error() string {
	if n.err == nil {
		return "ready (" + n.serving + ")"
	}
	return n.err.Error()
}
func (n *readiness) Unwrap() error             { return n.err }
func (n *readiness) Checks() map[string]string { return n.checks }
func (n *readiness) Serving() string           { return n.serving }

// degrade marks a ready answer "degraded": still correct, something impaired.
func (n *readiness) degrade() {
	if n.serving == "ok" {
		n.serving = "degraded"
	}
}

// ready is the server's readiness: the store answers, and the policy engine
// has an active bundle that is not failing at evaluation (policy.Engine's
// Failing: its recent evaluations all errored). A replica whose policy
// denies everything with 503 must leave the load balancer's rotation.
func (a *app) ready(ctx context.Context) error {
	checks := map[string]string{"store": "ok", "policy": "ok"}
	var errs []error
	if err := a.st.Ping(ctx); err != nil {
		checks["store"] = "unavailable"
		errs = append(errs, fmt.Errorf("store: %w", err))
	}
	switch {
	case a.engine == nil || a.engine.Activation().Revision == "":
		checks["policy"] = "unavailable"
		errs = append(errs, errors.New("policy: no active bundle"))
	default:
		if err := a.engine.Failing(); err != nil {
			checks["policy"] = "failing"
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &readiness{checks: checks, err: errors.Join(errs...)}
}

// follower is what readiness reads of a changes.Follower.
type follower interface{ State() changes.State }

// readyFollowing is ready plus the change follower's state, which /readyz
// always shows: "changes" is "up" or "down", "changes_since" when that
// last changed, "changes_last_change" when the latest change by another
// writer was learned of ("never" before the first).
//
// A follower that is down does not make the replica unready, only
// "degraded" (200): while down the replica does not trust its token cache
// and reads the store on every request, so every answer is still correct,
// only slower. Taking it out of rotation would gain nothing, and since a
// PostgreSQL restart or failover drops every replica's listener at once,
// it would empty the whole fleet's rotation at the moment the store comes
// back. When the store itself does not answer, the store check fails and
// the answer is 503 as before.
func (a *app) readyFollowing(f follower) func(context.Context) error {
	return func(ctx context.Context) error {
		err := a.ready(ctx)
		r, ok := readinessOf(err)
		if !ok {
			return err
		}
		s := f.State()
		r.checks["changes"], r.checks["changes_since"] = "up", view.Time(s.Since)
		r.checks["changes_last_change"] = "never"
		if !s.LastChange.IsZero() {
			r.checks["changes_last_change"] = view.Time(s.LastChange)
		}
		if !s.Up {
			r.checks["changes"] = "down"
			r.degrade()
		}
		return r
	}
}

// readinessOf is err as a readiness answer that more checks can be added
// to: a fresh "ok" one for nil; false for an error that is not one (a
// readiness function that failed otherwise), to be returned as it is.
func readinessOf(err error) (*readiness, bool) {
	if err == nil {
		return &readiness{checks: map[string]string{"store": "ok", "policy": "ok"}, serving: "ok"}, true
	}
	r, ok := err.(*readiness)
	return r, ok
}
