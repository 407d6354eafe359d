package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/metrics"
)

// TestPolicyBundleIsReadAtScrapeTime: the serving bundle's revision,
// activation time and load failure are what the state says at each scrape.
func TestPolicyBundleIsReadAtScrapeTime(t *testing.T) {
	m := metrics.New()
	state := metrics.BundleState{Revision: "r1+abc", Source: "embedded", ActivatedAt: time.Unix(1_800_000_000, 0)}
	m.PolicyBundle(func() metrics.BundleState { return state })
	scrape := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		b, _ := io.ReadAll(rec.Body)
		return string(b)
	}
	cases := []struct {
		name  string
		state metrics.BundleState
		want  []string
	}{
		{"serving, last load ok", state, []string{
			`agentauthz_policy_bundle_info{revision="r1+abc",source="embedded"} 1`,
			`agentauthz_policy_bundle_activated_timestamp_seconds 1.8e+09`,
			`agentauthz_policy_bundle_load_failing 0`,
		}},
		{"a later load failed", metrics.BundleState{Revision: "r1+abc", Source: "embedded", ActivatedAt: state.ActivatedAt, LoadFailing: true}, []string{
			`agentauthz_policy_bundle_load_failing 1`,
		}},
		{"a new revision", metrics.BundleState{Revision: "r2+def", Source: "bundle authz", ActivatedAt: time.Unix(1_800_000_060, 0)}, []string{
			`agentauthz_policy_bundle_info{revision="r2+def",source="bundle authz"} 1`,
			`agentauthz_policy_bundle_activated_timestamp_seconds 1.80000006e+09`,
		}},
	}
	for _, tc := range cases {
		state = tc.state
		body := scrape()
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: exposition lacks %s", tc.name, w)
			}
		}
	}
	var none *metrics.Metrics
	none.PolicyBundle(func() metrics.BundleState { return state })
	if none.Registerer() != nil {
		t.Error("a nil *Metrics has a registerer")
	}
}
