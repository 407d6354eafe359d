package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/metrics"
)

func TestNilMetricsRecordNothingAndDoNotPanic(t *testing.T) {
	var m *metrics.Metrics
	m.Request("GET", "/x", 200, time.Millisecond)
	m.Decision("authorize", true, true)
	m.ProbeDecision("authorize", true)
	m.DecisionError("authorize")
	m.TokenLookup("ok", "hit")
	m.Register()
}

func TestRecordedSeriesAreExposed(t *testing.T) {
	m := metrics.New()
	m.Request("POST", "/v1/authorize", 200, 300*time.Microsecond)
	m.Decision("authorize", true, true)
	m.Decision("authorize", false, false)
	m.ProbeDecision("list-accessible-agents", true)
	m.DecisionError("show-agent")
	m.TokenLookup("revoked", "miss")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`agentauthz_http_request_duration_seconds_count{method="POST",route="/v1/authorize",status="200"} 1`,
		`agentauthz_decisions_total{ability="authorize",result="allow",source="memo"} 1`,
		`agentauthz_decisions_total{ability="authorize",result="deny",source="eval"} 1`,
		`agentauthz_decisions_total{ability="show-agent",result="error",source="eval"} 1`,
		`agentauthz_decisions_total{ability="list-accessible-agents",result="allow",source="probe"} 1`,
		`agentauthz_token_lookups_total{cache="miss",outcome="revoked"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
}
