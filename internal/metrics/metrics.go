// Package metrics holds agentauthz's Prometheus collectors and the handler
// that serves them. A nil *Metrics is valid and records nothing, so
// packages take one optionally and tests need no registry.
//
// Labels are bounded sets (route templates, ability names, outcome words),
// never identifiers: a token, agent or user id never becomes a label.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of collectors of one process.
type Metrics struct {
	registry     *prometheus.Registry
	requests     *prometheus.HistogramVec
	decisions    *prometheus.CounterVec
	tokenLookups *prometheus.CounterVec
}

// New registers the collectors on a fresh registry (plus Go runtime and
// process collectors).
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "agentauthz_http_request_duration_seconds",
			Help:    "HTTP requests by method, route template and status.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"method", "route", "status"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentauthz_decisions_total",
			Help: "Policy decisions by ability, result (allow, deny, error) and source (memo, eval, probe: an evaluation over made-up candidates that narrows a listing's store query, never an answer).",
		}, []string{"ability", "result", "source"}),
		tokenLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentauthz_token_lookups_total",
			Help: "Bearer token resolutions by outcome (ok or the failure reason) and cache (hit, miss, none).",
		}, []string{"outcome", "cache"}),
	}
	m.registry.MustRegister(m.requests, m.decisions, m.tokenLookups,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Register adds further collectors (e.g. gauges read from the policy engine).
func (m *Metrics) Register(cs ...prometheus.Collector) {
	if m != nil {
		m.registry.MustRegister(cs...)
	}
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Request records one HTTP request.
func (m *Metrics) Request(method, route string, status int, d time.Duration) {
	if m != nil {
		m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Observe(d.Seconds())
	}
}

// Decision records one policy decision.
func (m *Metrics) Decision(ability string, allow, memo bool) {
	if m == nil {
		return
	}
	result, source := "deny", "eval"
	if allow {
		result = "allow"
	}
	if memo {
		source = "memo"
	}
	m.decisions.WithLabelValues(ability, result, source).Inc()
}

// ProbeDecision records a probe: a real evaluation about made-up
// candidates that narrows a listing's or search's store query. It is
// counted apart (source "probe") so that the answers callers got are not
// inflated by it.
func (m *Metrics) ProbeDecision(ability string, allow bool) {
	if m == nil {
		return
	}
	result := "deny"
	if allow {
		result = "allow"
	}
	m.decisions.WithLabelValues(ability, result, "probe").Inc()
}

// DecisionError records an evaluation that failed (and so denied).
func (m *Metrics) DecisionError(ability string) {
	if m != nil {
		m.decisions.WithLabelValues(ability, "error", "eval").Inc()
	}
}

// TokenLookup records one bearer token resolution.
func (m *Metrics) TokenLookup(outcome, cache string) {
	if m != nil {
		m.tokenLookups.WithLabelValues(outcome, cache).Inc()
	}
}

// ---- Authentication guards: the negative token cache (credential.Resolver)
// and the failed-authentication throttle (principal.FailureThrottle). ----

// NegativeCacheHits returns the counter of bearer lookups answered
// "unknown" from the negative cache, registering it on first use. On a nil
// *Metrics it returns an unregistered counter that records nowhere.
func (m *Metrics) NegativeCacheHits() prometheus.Counter {
	return m.guardCounter("agentauthz_token_negative_cache_hits_total",
		"Bearer token lookups answered as unknown from the negative cache, without a store query.")
}

// AuthThrottled returns the counter of bearer attempts refused with 429
// because their client failed too often, registering it on first use. On a
// nil *Metrics it returns an unregistered counter that records nowhere.
func (m *Metrics) AuthThrottled() prometheus.Counter {
	return m.guardCounter("agentauthz_auth_throttled_total",
		"Bearer authentication attempts refused (429) because the client had too many failed authentications.")
}

// guardCounter registers a counter once and hands back the registered one
// on later calls.
func (m *Metrics) guardCounter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	if m == nil {
		return c
	}
	if err := m.registry.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(prometheus.Counter); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// ---- Policy health: whether the active policy decides (readiness) and how
// many candidate bundles were refused. Evaluation errors themselves are
// agentauthz_decisions_total{result="error"}, by ability. ----

// PolicyHealth registers two collectors read at scrape time:
// agentauthz_policy_failing (1 while the active policy counts as failing at
// evaluation, when /readyz answers 503; 0 otherwise) and
// agentauthz_policy_bundle_rejections_total (candidate bundles refused since
// start: load, compile, data validation or decision cases). A nil *Metrics
// registers nothing.
func (m *Metrics) PolicyHealth(failing func() bool, rejections func() uint64) {
	if m == nil {
		return
	}
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "agentauthz_policy_failing",
			Help: "1 while the active policy bundle is failing at evaluation (its recent evaluations all errored; /readyz is 503), else 0.",
		}, func() float64 {
			if failing() {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "agentauthz_policy_bundle_rejections_total",
			Help: "Candidate policy bundles refused since start (load, compile, data validation or decision cases); the previous bundle kept serving.",
		}, func() float64 { return float64(rejections()) }),
	)
}

// ---- last_used_at writes (credential's coalescing flusher). ----

// LastUsedRowsWritten returns the counter of token rows sent to the store
// by last_used_at flushes, registering it on first use. On a nil *Metrics
// it returns an unregistered counter that records nowhere.
func (m *Metrics) LastUsedRowsWritten() prometheus.Counter {
	return m.guardCounter("agentauthz_token_last_used_rows_written_total",
		"Token rows whose last_used_at was written by the coalescing flusher (at most one per token per flush).")
}

// LastUsedDeferred returns the counter of pending last_used_at writes held
// back at a flush because the token was written less than
// --touch-min-interval ago, registering it on first use. On a nil *Metrics
// it returns an unregistered counter that records nowhere.
func (m *Metrics) LastUsedDeferred() prometheus.Counter {
	return m.guardCounter("agentauthz_token_last_used_deferred_total",
		"Pending last_used_at writes held back at a flush because the token was written less than --touch-min-interval ago (a token held back at several flushes counts at each).")
}

// ---- Change propagation (internal/changes): whether this process learns
// of other processes' commits (PostgreSQL LISTEN, SQLite data_version
// polling), and what it learnt. ----

// ChangeListener registers agentauthz_change_listener_up, read at scrape
// time: 1 while the change follower is connected and confirmed recently
// (the token cache is trusted), 0 while it is down (every lookup asks the
// store). A nil *Metrics registers nothing.
func (m *Metrics) ChangeListener(up func() bool) {
	if m == nil {
		return
	}
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "agentauthz_change_listener_up",
		Help: "1 while this process learns of every change committed by other processes (the token cache is trusted), 0 while it does not (every bearer lookup asks the store).",
	}, func() float64 {
		if up() {
			return 1
		}
		return 0
	}))
}

// ChangeNotifications returns the counter of change notifications by type:
// token, agent, user (one cache eviction each), commit (SQLite: another
// process committed; the cache is emptied), reconnect (notifications may
// have been lost; emptied) and invalid (a payload that does not parse;
// emptied). On a nil *Metrics it returns an unregistered vector.
func (m *Metrics) ChangeNotifications() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentauthz_change_notifications_total",
		Help: "Change notifications received, by type: token, agent, user, commit (SQLite), reconnect, invalid.",
	}, []string{"type"})
	if m == nil {
		return c
	}
	if err := m.registry.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// ---- The policy bundle serving: which revision, since when, and whether
// the latest attempt to bring in a bundle (a reload, or a download from a
// bundle server) failed. ----

// BundleState is what PolicyBundle reads at scrape time.
type BundleState struct {
	// Revision and Source name the bundle serving.
	Revision, Source string
	// ActivatedAt is when it started serving.
	ActivatedAt time.Time
	// LoadFailing is true when the latest attempt to load, download or
	// activate a bundle failed (the bundle named above kept serving).
	LoadFailing bool
}

// PolicyBundle registers agentauthz_policy_bundle_info{revision,source}
// (always 1: the revision is a label, as in a build_info metric),
// agentauthz_policy_bundle_activated_timestamp_seconds and
// agentauthz_policy_bundle_load_failing (0 or 1), read from state at
// scrape time. A nil *Metrics registers nothing.
func (m *Metrics) PolicyBundle(state func() BundleState) {
	if m != nil {
		m.registry.MustRegister(bundleCollector(state))
	}
}

type bundleCollector func() BundleState

var (
	bundleInfoDesc = prometheus.NewDesc("agentauthz_policy_bundle_info",
		"The policy bundle serving: its revision (manifest revision + content hash) and source; always 1.", []string{"revision", "source"}, nil)
	bundleActivatedDesc = prometheus.NewDesc("agentauthz_policy_bundle_activated_timestamp_seconds",
		"When the policy bundle serving was activated (last successful activation), Unix seconds.", nil, nil)
	bundleLoadFailingDesc = prometheus.NewDesc("agentauthz_policy_bundle_load_failing",
		"1 when the latest attempt to load, download or activate a policy bundle failed (the previous bundle keeps serving), else 0.", nil, nil)
)

func (c bundleCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- bundleInfoDesc
	ch <- bundleActivatedDesc
	ch <- bundleLoadFailingDesc
}

func (c bundleCollector) Collect(ch chan<- prometheus.Metric) {
	s := c()
	failing := 0.0
	if s.LoadFailing {
		failing = 1
	}
	ch <- prometheus.MustNewConstMetric(bundleInfoDesc, prometheus.GaugeValue, 1, s.Revision, s.Source)
	ch <- prometheus.MustNewConstMetric(bundleActivatedDesc, prometheus.GaugeValue, float64(s.ActivatedAt.UnixNano())/1e9)
	ch <- prometheus.MustNewConstMetric(bundleLoadFailingDesc, prometheus.GaugeValue, failing)
}

// Registerer is the registry, for collectors registered by other code
// (OPA's status plugin, when `status.prometheus` is set); nil for a nil *Metrics.
func (m *Metrics) Registerer() prometheus.Registerer {
	if m == nil {
		return nil
	}
	return m.registry
}
