package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/changes"
	"github.com/agentauthz/agentauthz/internal/credential"
	"github.com/agentauthz/agentauthz/internal/httpapi"
	"github.com/agentauthz/agentauthz/internal/metrics"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
	"github.com/agentauthz/agentauthz/internal/store"
)

// defaultCacheTTL is --cache-ttl's default. Changes reach the cache
// through the store (internal/changes), and the cache is not trusted while
// that is not confirmed, so the TTL is only the safety net for a
// notification lost in a way nothing detects (say, a writer that bypasses
// the triggers); it also bounds how long an idle token's entry stays.
const defaultCacheTTL = time.Minute

// serveConfig is the server's part of the configuration.
type serveConfig struct {
	addr                string
	cacheTTL            time.Duration
	cacheSize           int
	memoSize            int
	negativeCacheTTL    time.Duration
	authFailureBurst    int
	authFailureRefill   time.Duration
	touchInterval       time.Duration
	touchMinInterval    time.Duration
	trustedProxies      []string
	proxyUserHeader     string
	proxyAudienceHeader string
	proxyAudiences      []string
	anonymous           bool
	accessLog           bool
	bodyLimit           int64
	requestTimeout      time.Duration
	authzenPEPToken     string
	authzenNetworks     []string
	authzenBaseURL      string
	opaConfig           string
}

func (a *app) serveCommand() *cobra.Command {
	var c serveConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the REST API (opens and migrates the store first)",
		Args:  exactArgs(0, "(none)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.serve(cmd.Context(), c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address (env AGENTAUTHZ_ADDR)")
	f.DurationVar(&c.cacheTTL, "cache-ttl", defaultCacheTTL, "token cache TTL, a safety net: changes made by other processes reach the cache within ~1s through the store (LISTEN/NOTIFY, SQLite data_version); each entry lives the TTL less up to a tenth of it, at random; 0 disables the cache and the follower (env AGENTAUTHZ_CACHE_TTL)")
	f.IntVar(&c.cacheSize, "cache-size", credential.DefaultCacheSize, "token cache capacity in tokens; size it ≈ the tokens in use within --cache-ttl (the working set), ~1.1 KB of heap each (env AGENTAUTHZ_CACHE_SIZE)")
	f.IntVar(&c.memoSize, "memo-size", authz.DefaultMemoSize, "decisions the decision memo holds (repeated questions answered without evaluating; ~0.8 KB of heap each, BenchmarkMemoEntryHeap); size it ≈ the distinct questions asked within the time they should be remembered; 0 turns the memo off (env AGENTAUTHZ_MEMO_SIZE)")
	f.DurationVar(&c.negativeCacheTTL, "negative-cache-ttl", 5*time.Second, "how long an unknown token is answered without asking the store again; 0 disables (env AGENTAUTHZ_NEGATIVE_CACHE_TTL)")
	f.IntVar(&c.authFailureBurst, "auth-failure-burst", principal.DefaultFailureBurst, "failed bearer authentications a client (IP, or IPv6 /64; behind --trusted-proxies the X-Forwarded-For client) may make before all its bearer attempts get 429; 0 disables (env AGENTAUTHZ_AUTH_FAILURE_BURST)")
	f.DurationVar(&c.authFailureRefill, "auth-failure-refill", principal.DefaultFailureRefill, "a client regains one allowed failed authentication per this interval (env AGENTAUTHZ_AUTH_FAILURE_REFILL)")
	f.DurationVar(&c.touchInterval, "touch-interval", 5*time.Second, "flush interval of coalesced last_used_at writes (env AGENTAUTHZ_TOUCH_INTERVAL)")
	f.DurationVar(&c.touchMinInterval, "touch-min-interval", time.Minute, "least time between two last_used_at writes of one token (later uses are held back, not lost), so writes follow active tokens, not requests; 0 writes every used token at every flush (env AGENTAUTHZ_TOUCH_MIN_INTERVAL)")
	f.StringSliceVar(&c.trustedProxies, "trusted-proxies", nil, "CIDRs or IPs of proxies whose identity headers are believed (env AGENTAUTHZ_TRUSTED_PROXIES)")
	f.StringVar(&c.proxyUserHeader, "proxy-user-header", "X-Forwarded-User", "header carrying the user's login from a trusted proxy")
	f.StringVar(&c.proxyAudienceHeader, "proxy-audience-header", "X-Forwarded-Audience", "header carrying comma-separated audiences from a trusted proxy")
	f.StringSliceVar(&c.proxyAudiences, "proxy-audiences", nil, "audiences given to every request from a trusted proxy (env AGENTAUTHZ_PROXY_AUDIENCES)")
	f.BoolVar(&c.anonymous, "anonymous", true, "resolve unauthenticated callers to audience:public (env AGENTAUTHZ_ANONYMOUS)")
	f.BoolVar(&c.accessLog, "access-log", true, "log one line per request (env AGENTAUTHZ_ACCESS_LOG)")
	f.Int64Var(&c.bodyLimit, "body-limit", 64<<10, "largest request body in bytes (env AGENTAUTHZ_BODY_LIMIT)")
	f.DurationVar(&c.requestTimeout, "request-timeout", 10*time.Second, "deadline of one request (env AGENTAUTHZ_REQUEST_TIMEOUT)")
	f.StringVar(&c.authzenPEPToken, "authzen-pep-token", "", "bearer secret a policy enforcement point presents to the AuthZEN API (/access/v1/*); prefer the env variable (env AGENTAUTHZ_AUTHZEN_PEP_TOKEN)")
	f.StringSliceVar(&c.authzenNetworks, "authzen-trusted-networks", nil, "CIDRs or IPs whose TCP peers may call the AuthZEN API (/access/v1/*) without the PEP secret; --trusted-proxies grants no such access (env AGENTAUTHZ_AUTHZEN_TRUSTED_NETWORKS)")
	f.StringVar(&c.opaConfig, "opa-config", "", "OPA configuration file (YAML or JSON): bundles from a bundle server with signature verification, decision logs, status; see README \"OPA configuration\"")
	f.StringVar(&c.authzenBaseURL, "authzen-base-url", "", "policy_decision_point in /.well-known/authzen-configuration; empty: the request's scheme and Host (env AGENTAUTHZ_AUTHZEN_BASE_URL)")
	return cmd
}

// serve assembles the graph and runs the server until SIGINT/SIGTERM;
// SIGHUP reloads the policy bundle.
func (a *app) serve(ctx context.Context, c serveConfig) error {
	a.serving = true
	if c.cacheSize < 1 {
		return &usageError{fmt.Sprintf("--cache-size must be at least 1, not %d (--cache-ttl=0 disables the cache)", c.cacheSize)}
	}
	if c.memoSize < 0 {
		return &usageError{fmt.Sprintf("--memo-size must be 0 (no memo) or more, not %d", c.memoSize)}
	}
	if c.cacheTTL > 0 && c.cacheTTL < time.Millisecond {
		return &usageError{fmt.Sprintf("--cache-ttl must be 0 (no cache) or at least 1ms, not %s", c.cacheTTL)}
	}
	if c.negativeCacheTTL > 0 && c.negativeCacheTTL < time.Millisecond {
		return &usageError{fmt.Sprintf("--negative-cache-ttl must be 0 (off) or at least 1ms, not %s", c.negativeCacheTTL)}
	}
	if c.touchMinInterval < 0 {
		return &usageError{fmt.Sprintf("--touch-min-interval must be 0 (off) or positive, not %s", c.touchMinInterval)}
	}
	// The AuthZEN API's own networks: a proxy trusted for X-Forwarded-For
	// and identity headers must not make every client behind it a PEP.
	pepNets, err := principal.ParseNetworks(c.authzenNetworks)
	if err != nil {
		return &usageError{fmt.Sprintf("--authzen-trusted-networks: %v", err)}
	}
	// --opa-config is read first: a bad file exits 2 before anything opens.
	if c.opaConfig != "" {
		cfg, err := a.loadOPAConfig(c.opaConfig)
		if err != nil {
			return err
		}
		a.opa = cfg // open builds the engine with the file's settings
	}
	if err := a.open(ctx); err != nil {
		return err
	}
	opaCfg := a.opa
	m := metrics.New()
	eng := a.engine
	m.PolicyBundle(bundleState(eng))
	m.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "agentauthz_policy_generation", Help: "Activations of the policy bundle since start (1 = the first).",
	}, func() float64 { return float64(eng.Activation().Generation) }))
	m.PolicyHealth(func() bool { return eng.Failing() != nil }, func() uint64 { return eng.Health().Rejections })
	resolver := credential.New(a.st, credential.Options{
		Prefix: a.tokenPrefix, CacheTTL: c.cacheTTL, CacheSize: c.cacheSize, NegativeTTL: c.negativeCacheTTL,
		TouchInterval: c.touchInterval, TouchMinInterval: c.touchMinInterval, Logger: a.logger, Metrics: m,
	})
	// Changes committed by other processes (other replicas, the CLI) reach
	// the token cache through the store: see internal/changes.
	follower, err := a.followChanges(c, resolver, m)
	if err != nil {
		_ = resolver.Close(context.Background())
		return err
	}
	ready := a.ready
	if follower != nil {
		defer follower.Close()
		ready = a.readyFollowing(follower)
	}
	var opaPlugins *policy.Plugins
	if opaCfg != nil {
		if opaPlugins, err = policy.StartPlugins(ctx, opaCfg, eng, m.Registerer(), a.logger); err != nil {
			_ = resolver.Close(context.Background())
			return err
		}
		defer stopPlugins(opaPlugins) // flushes buffered decision logs
		if opaCfg.RemoteBundle() {
			ready = readyBundle(ready, a, opaPlugins)
		}
	}
	// The server's service evicts from the token cache; the CLI's does not
	// need to.
	a.svc = authz.New(a.st, a.engine, resolver, authz.Config{TokenPrefix: a.tokenPrefix, MaxTokenLifetime: a.maxTokenLifetime, Logger: a.logger, Metrics: m, DecisionLog: decisionLog(opaPlugins), MemoSize: serviceMemoSize(c.memoSize)})
	chain, err := a.principalChain(c, resolver, m)
	if err != nil {
		return err
	}
	if err := a.engine.Watch(ctx); err != nil {
		return fmt.Errorf("watch policy bundle: %w", err)
	}
	srv := httpapi.New(httpapi.Config{
		Addr: c.addr, BodyLimit: c.bodyLimit, RequestTimeout: c.requestTimeout, AccessLog: c.accessLog, Logger: a.logger,
		AuthZENPEPToken: c.authzenPEPToken, AuthZENTrustedNetworks: pepNets, AuthZENBaseURL: c.authzenBaseURL,
	}, httpapi.Deps{
		Service:    a.svc,
		Principals: chain,
		Metrics:    m,
		Ready:      ready, // store ping + policy active and not failing, and the change follower's state (ready.go)
	})
	reload := a.engine.Reload
	if opaCfg != nil && opaCfg.RemoteBundle() {
		reload = opaPlugins.Reload // the bundle server's bundle is polled, not reloaded
	}
	go a.reloadOnHangup(ctx, reload)

	errc := make(chan error, 1)
	go func() { errc <- srv.Start() }()
	a.logger.Info("agentauthz serving", "addr", c.addr, "store", store.RedactURL(a.databaseURL),
		"policy_revision", a.engine.Activation().Revision, "cache_ttl", c.cacheTTL.String(), "cache_size", c.cacheSize, "anonymous", c.anonymous)
	select {
	case err := <-errc:
		_ = resolver.Close(context.Background())
		return err
	case <-ctx.Done():
	}
	a.logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if cerr := resolver.Close(sctx); cerr != nil {
		a.logger.Warn("flushing last_used_at on shutdown failed", "err", cerr)
	}
	return err
}

// followChanges keeps the token cache in step with changes committed by
// other processes: LISTEN/NOTIFY on PostgreSQL, PRAGMA data_version polling
// on SQLite. Without a cache there is nothing to follow (nil). /readyz
// shows the follower's state (readyFollowing).
func (a *app) followChanges(c serveConfig, resolver *credential.Resolver, m *metrics.Metrics) (*changes.Follower, error) {
	if c.cacheTTL <= 0 {
		return nil, nil
	}
	opts := changes.Options{Logger: a.logger, Metrics: m}
	if a.st.Dialect() == "postgres" {
		f, err := changes.ListenPostgres(a.databaseURL, resolver, opts)
		if err != nil {
			return nil, fmt.Errorf("listen for changes on %s: %w", store.RedactURL(a.databaseURL), err)
		}
		return f, nil
	}
	return changes.PollSQLite(a.st, resolver, opts), nil
}

func (a *app) principalChain(c serveConfig, lookup principal.TokenLookup, m *metrics.Metrics) (principal.Chain, error) {
	nets, err := principal.ParseNetworks(c.trustedProxies)
	if err != nil {
		return nil, &usageError{fmt.Sprintf("--trusted-proxies: %v", err)}
	}
	bearer := principal.BearerToken{Prefix: a.tokenPrefix, Lookup: lookup}
	switch {
	case c.authFailureBurst < 0:
		return nil, &usageError{"--auth-failure-burst must be 0 (off) or more"}
	case c.authFailureBurst > 0 && c.authFailureRefill <= 0:
		return nil, &usageError{"--auth-failure-refill must be positive"}
	case c.authFailureBurst > 0:
		bearer.Throttle = principal.NewFailureThrottle(principal.ThrottleOptions{
			Burst: c.authFailureBurst, Refill: c.authFailureRefill, TrustedProxies: nets, Metrics: m,
		})
	}
	chain := principal.Chain{bearer}
	if len(c.trustedProxies) > 0 {
		st := a.st
		proxy := &principal.TrustedProxy{
			Networks: nets, UserHeader: c.proxyUserHeader, AudienceHeader: c.proxyAudienceHeader, FixedAudiences: c.proxyAudiences,
			LookupUser: func(ctx context.Context, login string) (*model.User, error) {
				u, err := st.GetUserByLogin(ctx, login)
				if err != nil {
					return nil, err
				}
				return &u, nil
			},
		}
		if err := proxy.Validate(); err != nil {
			return nil, &usageError{err.Error()}
		}
		chain = append(chain, proxy)
	}
	if c.anonymous {
		chain = append(chain, principal.AllowAnonymous{})
	}
	return chain, nil
}

func (a *app) reloadOnHangup(ctx context.Context, reload func(context.Context) error) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := reload(ctx); err != nil {
				a.logger.Error("policy reload on SIGHUP failed; previous policy keeps serving", "err", err)
			}
		}
	}
}

// serviceMemoSize maps --memo-size (0: off) to authz.Config.MemoSize (0:
// the default, negative: off).
func serviceMemoSize(flag int) int {
	if flag == 0 {
		return -1
	}
	return flag
}
