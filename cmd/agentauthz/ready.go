package main

import (
	"context"
	"errors"
	"fmt"
)

// notReady is a readiness failure that names its checks for /readyz
// ({"store": "ok", "policy": "failing"}); Error() carries the raw causes,
// which httpapi logs and never serves.
type notReady struct {
	checks map[string]string
	err    error
}

func (n *notReady) Error() string             { return n.err.Error() }
func (n *notReady) Unwrap() error             { return n.err }
func (n *notReady) Checks() map[string]string { return n.checks }

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
	return &notReady{checks: checks, err: errors.Join(errs...)}
}
