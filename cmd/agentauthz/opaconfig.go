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
	"github.com/open-policy-agent/opa/v1/bundle"
)

// loadOPAConfig reads --opa-config; a file that does not parse, names an
// unknown setting, a missing key file or a key that does not parse is a
// usage error (exit 2) naming it. So is a local bundle the configured keys
// refuse (a file:// entry, or --policy-bundle when keys are configured):
// at start there is no last good bundle to keep serving.
func (a *app) loadOPAConfig(path string) (*policy.OPAConfig, error) {
	cfg, err := policy.LoadOPAConfig(path)
	if err != nil {
		return nil, &usageError{fmt.Sprintf("--opa-config: %v", err)}
	}
	for _, w := range cfg.Warnings {
		a.logger.Warn("opa config", "file", path, "warning", w)
	}
	for _, id := range cfg.TestOnlyKeys {
		a.logger.Warn("opa config: key "+id+" is the repository's TEST-ONLY public key: its private key is public, anyone can sign bundles this server accepts",
			"file", path, "key", id)
	}
	if local, _ := cfg.LocalBundle(); (local != "" || cfg.RemoteBundle()) && a.policyBundle != "" {
		return nil, &usageError{fmt.Sprintf("--policy-bundle %s and the bundles entry of --opa-config %s name two policies; keep one", a.policyBundle, path)}
	}
	if p, verify := localBundle(a.policyBundle, cfg); verify != nil {
		if _, err := policy.LoadSignedBundle(p, verify); err != nil {
			return nil, &usageError{fmt.Sprintf("--opa-config %s: %s is refused by its keys: %v", path, p, err)}
		}
	}
	return cfg, nil
}

// localBundle is the local bundle the engine loads and how it is verified:
// the configuration's file:// entry, or else --policy-bundle, verified with
// the configured keys (none: not verified).
func localBundle(policyBundle string, cfg *policy.OPAConfig) (string, *bundle.VerificationConfig) {
	if p, verify := cfg.LocalBundle(); p != "" {
		return p, verify
	}
	if policyBundle == "" {
		return "", nil
	}
	return policyBundle, cfg.Verification()
}

// policyOptions is how the engine is built: the --policy-bundle (or the
// embedded default), and, with --opa-config, its restricted built-ins and
// hosts, its local bundle verified with its keys, or Await for a bundle server's.
func (a *app) policyOptions() policy.Options {
	opts := policy.Options{BundlePath: a.policyBundle, Logger: a.quietLogger()}
	if a.opa == nil {
		return opts
	}
	opts.AllowBuiltins, opts.AllowNet = a.opa.AllowBuiltins, a.opa.AllowNet
	// A bundle server's bundle: decide nothing (503) until it arrives,
	// rather than serve the embedded default meanwhile.
	opts.Await = a.opa.RemoteBundle()
	if p, verify := localBundle(a.policyBundle, a.opa); p != "" {
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
