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
			Help: "Policy decisions by ability, result (allow, deny, error) and source (memo, eval).",
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
