package authz_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/metrics"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// A listing's probes (evaluations over made-up candidates that narrow the
// store query) are counted apart, as source "probe", so the decisions the
// metrics report are the answers callers got.
func TestListingProbesAreCountedApartFromDecisions(t *testing.T) {
	ctx := context.Background()
	eng, err := policy.New(ctx, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, "sqlite")
	u, err := st.CreateUser(ctx, model.User{Login: "sam", Roles: []string{"subscriber"}, Status: model.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	svc := authz.New(st, eng, nil, authz.Config{Metrics: m})
	if _, _, err := svc.ListAccessible(ctx, principal.ForUser(&u, nil), "viewer", authz.Page{}); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	var probes, answers []string // decision series with and without source="probe"
	for _, line := range strings.Split(string(body), "\n") {
		switch {
		case !strings.HasPrefix(line, "agentauthz_decisions_total{"):
		case strings.Contains(line, `source="probe"`):
			probes = append(probes, line)
		default:
			answers = append(answers, line)
		}
	}
	if len(probes) == 0 {
		t.Fatalf("no decision counted with source=\"probe\"; decisions: %v", answers)
	}
}
