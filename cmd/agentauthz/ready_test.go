package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/changes"
	"github.com/agentauthz/agentauthz/internal/httpapi"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/store"
	"github.com/agentauthz/agentauthz/internal/view"
)

// fixedState is a change follower frozen in one state.
type fixedState changes.State

func (s fixedState) State() changes.State { return changes.State(s) }

// TestReadyzShowsTheChangeFollower: /readyz always names the follower's
// state; a follower that is down leaves the replica ready but "degraded"
// (it answers from the store), and a store that is down is 503 whatever
// the follower says.
func TestReadyzShowsTheChangeFollower(t *testing.T) {
	since := time.Date(2026, 12, 7, 1, 2, 3, 456789000, time.UTC)
	change := since.Add(time.Minute)
	cases := []struct {
		name       string
		state      changes.State
		storeDown  bool
		wantCode   int
		wantStatus string
		wantChecks map[string]string
	}{
		{"a following replica is ok and says since when and its last change", changes.State{Up: true, Since: since, LastChange: change},
			false, http.StatusOK, "ok", map[string]string{"store": "ok", "policy": "ok", "changes": "up", "changes_since": view.Time(since), "changes_last_change": view.Time(change)}},
		{"a follower that has seen no change says never", changes.State{Up: true, Since: since},
			false, http.StatusOK, "ok", map[string]string{"changes": "up", "changes_last_change": "never"}},
		{"a follower that is down leaves the replica ready but degraded", changes.State{Up: false, Since: since, LastChange: change},
			false, http.StatusOK, "degraded", map[string]string{"store": "ok", "changes": "down", "changes_since": view.Time(since)}},
		{"a store that is down is unavailable, the follower down too", changes.State{Up: false, Since: since},
			true, http.StatusServiceUnavailable, "unavailable", map[string]string{"store": "unavailable", "policy": "ok", "changes": "down"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "r.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			eng, err := policy.New(ctx, policy.Options{})
			if err != nil {
				t.Fatal(err)
			}
			a := &app{st: st, engine: eng}
			srv := httpapi.New(httpapi.Config{Logger: slog.New(slog.DiscardHandler)}, httpapi.Deps{Ready: a.readyFollowing(fixedState(c.state))})
			ts := httptest.NewServer(srv.Handler())
			defer ts.Close()
			if c.storeDown {
				_ = st.Close()
			}

			res, err := http.Get(ts.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			var got struct {
				Status string            `json:"status"`
				Checks map[string]string `json:"checks"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			if res.StatusCode != c.wantCode || got.Status != c.wantStatus {
				t.Fatalf("/readyz = %d %s, want %d with status %q", res.StatusCode, b, c.wantCode, c.wantStatus)
			}
			for k, v := range c.wantChecks {
				if got.Checks[k] != v {
					t.Errorf("check %q = %q, want %q (%s)", k, got.Checks[k], v, b)
				}
			}
		})
	}
}
