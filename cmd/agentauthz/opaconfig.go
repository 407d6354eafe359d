package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/metrics"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/view"
)

// loadOPAConfig reads --opa-config; a file that does not parse, names an
// unknown setting or a missing key file is a usage error (exit 2) naming it.
func (a *app) loadOPAConfig(path string) (*policy.OPAConfig, error) {
	cfg, err := policy.LoadOPAConfig(path)
	if err != nil {
		return nil, &usageError{fmt.Sprintf("--opa-config: %v", err)}
	}
	for _, w := range cfg.Warnings {
		a.logger.Warn("opa config", "file", path, "warning", w)
	}
	if local, _ := cfg.LocalBundle(); (local != "" || cfg.RemoteBundle()) && a.policyBundle != "" {
		return nil, &usageError{fmt.Sprintf("--policy-bundle %s and the bundles entry of --opa-config %s name two policies; keep one", a.policyBundle, path)}
	}
	return cfg, nil
}

// policyOptions is how the engine is built: the --policy-bundle (or the
// embedded default), and, with --opa-config, its restricted built-ins and
// its local signed bundle, or Await for a bundle server's.
func (a *app) policyOptions() policy.Options {
	opts := policy.Options{BundlePath: a.policyBundle, Logger: a.quietLogger()}
	if a.opa == nil {
		return opts
	}
	opts.AllowBuiltins = a.opa.AllowBuiltins
	// A bundle server's bundle: decide nothing (503) until it arrives,
	// rather than serve the embedded default meanwhile.
	opts.Await = a.opa.RemoteBundle()
	if p, verify := a.opa.LocalBundle(); p != "" {
		opts.BundlePath, opts.Verification = p, verify
	}
	return opts
}

// stopPlugins stops OPA's plugins on shutdown, within a bound: buffered
// decision logs are sent if the collector answers in time.
func stopPlugins(p *policy.Plugins) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.Stop(ctx)
}

// bundleState is what /metrics says of the bundle serving.
func bundleState(eng *policy.Engine) func() metrics.BundleState {
	return func() metrics.BundleState {
		act := eng.Activation()
		return metrics.BundleState{Revision: act.Revision, Source: act.Source, ActivatedAt: act.ActivatedAt, LoadFailing: eng.LastLoad().Err != nil}
	}
}

// decisionLog is the service's decision log: nil (no work at all) unless
// --opa-config configures decision_logs.
func decisionLog(p *policy.Plugins) authz.DecisionLogger {
	if l := p.DecisionLog(); l != nil {
		return l
	}
	return nil
}

// readyBundle adds the bundle server's bundle to readiness: "bundle" is
// "waiting" (503) until a downloaded bundle has activated, then "ok", or
// "stale" (200, degraded) while the latest download or activation failed
// and the last good bundle serves; "bundle_revision" and
// "bundle_last_request" say which and when.
func readyBundle(next func(context.Context) error, a *app, p *policy.Plugins) func(context.Context) error {
	return func(ctx context.Context) error {
		err := next(ctx)
		r, ok := readinessOf(err)
		if !ok {
			return err
		}
		s := p.BundleState()
		r.checks["bundle"], r.checks["bundle_revision"] = "ok", a.engine.Activation().Revision
		r.checks["bundle_last_request"] = "never"
		if !s.LastRequest.IsZero() {
			r.checks["bundle_last_request"] = view.Time(s.LastRequest)
		}
		switch {
		case !s.Activated:
			r.checks["bundle"], r.serving = "waiting", ""
			r.err = errors.Join(r.err, fmt.Errorf("bundle server's bundle not activated yet: %v", s.Err))
		case s.Err != nil:
			r.checks["bundle"] = "stale"
			r.degrade()
		}
		return r
	}
}
