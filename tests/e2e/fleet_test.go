package e2e

import (
	"net/http"
	"testing"
	"time"
)

// Three replicas on one PostgreSQL, each caching tokens for an hour: every
// change made through replica A, or by the CLI beside them, reaches B and
// C within a second. Each credential was first warmed into every
// replica's cache, so only propagation can explain a refusal.
func TestFleetEveryChangeReachesEveryReplica(t *testing.T) {
	t.Parallel()
	f := startFleet(t)
	others := []*server{f.b, f.c}

	// The subtests share the fleet and run in order; each changes a
	// different part of the world.
	t.Run("a token revoked through A is refused by B and C", func(t *testing.T) {
		tok := mintCLI(t, f.db, "chubes-bot")
		f.warm(t, tok.Token)
		start := time.Now()
		f.a.do(t, "DELETE", "/v1/agents/chubes-bot/tokens/"+itoa(tok.ID), nil, asUser("chubes")).want(t, http.StatusOK)
		wantInvalidToken(t, f.a.do(t, "GET", "/v1/whoami", nil, bearer(tok.Token)), "revoked")
		flipsWithin(t, "revoked through A", start, others, refused(t, tok.Token, "revoked"))
	})

	t.Run("a token revoked by the CLI is refused by A, B and C", func(t *testing.T) {
		tok := mintCLI(t, f.db, "chubes-bot")
		f.warm(t, tok.Token)
		cliJSON(t, f.db, nil, "agents", "token", "revoke", "chubes-bot", itoa(tok.ID))
		// Timed from the CLI's exit (its commit came before): the CLI's own
		// start-up is not propagation.
		flipsWithin(t, "revoked by the CLI", time.Now(), f.replicas, refused(t, tok.Token, "revoked"))
	})

	t.Run("a grant removed through A no longer admits the grantee on B and C", func(t *testing.T) {
		for _, s := range f.replicas {
			if ok, role := s.access(t, "chubes-bot", "operator", asUser("sam")); !ok || role != "operator" {
				t.Fatalf("%s before: sam allowed=%v role=%q, want operator", s.base, ok, role)
			}
		}
		start := time.Now()
		f.a.do(t, "DELETE", "/v1/agents/chubes-bot/grants/user:sam", nil, asUser("chubes")).want(t, http.StatusOK, http.StatusNoContent)
		flipsWithin(t, "grant removed through A", start, others, func(s *server) bool {
			ok, _ := s.access(t, "chubes-bot", "operator", asUser("sam"))
			return !ok
		})
	})

	t.Run("an agent deactivated through A has its tokens forbidden on B and C", func(t *testing.T) {
		tok := mintCLI(t, f.db, "acme-bot")
		f.warm(t, tok.Token)
		start := time.Now()
		f.a.do(t, "PATCH", "/v1/agents/acme-bot", map[string]string{"status": "inactive"}, asUser("chubes")).want(t, http.StatusOK)
		flipsWithin(t, "agent deactivated through A", start, others, func(s *server) bool {
			r := s.do(t, "POST", "/v1/authorize", map[string]string{"action": "chat"}, bearer(tok.Token))
			if r.status == http.StatusOK {
				return false
			}
			r.want(t, http.StatusForbidden)
			if e := r.apiError(t); e.Error.Code != "agent_inactive" {
				t.Fatalf("%s: code %q, want agent_inactive", s.base, e.Error.Code)
			}
			return true
		})
	})

	t.Run("an owner disabled through A has every agent token refused on B and C", func(t *testing.T) {
		tok := mintCLI(t, f.db, "carol-bot")
		f.warm(t, tok.Token)
		start := time.Now()
		f.a.do(t, "PATCH", "/v1/users/carol", map[string]string{"status": "disabled"}, asUser("root")).want(t, http.StatusOK)
		flipsWithin(t, "owner disabled through A", start, others, refused(t, tok.Token, "owner of the token's agent is disabled"))
	})

	for _, s := range others {
		for _, kind := range []string{"token", "agent", "user"} {
			if n := s.counter(t, `agentauthz_change_notifications_total{type="`+kind+`"}`); n == 0 {
				t.Errorf("%s counted no %s notifications", s.base, kind)
			}
		}
	}
}

// The listener's backend is killed on every replica and kept from
// reconnecting: each replica says so (/readyz degraded, still 200;
// /metrics listener down), stops trusting its cache, so a revocation made
// meanwhile is refused at once, and on reconnection it empties its cache
// before trusting it again.
func TestFleetListenerKilledNoStaleAllowAndCacheEmptiedOnReconnect(t *testing.T) {
	t.Parallel()
	f := startFleet(t)
	others := []*server{f.b, f.c}
	revoked := mintCLI(t, f.db, "chubes-bot")
	kept := mintCLI(t, f.db, "chubes-bot")
	f.warm(t, revoked.Token)
	f.warm(t, kept.Token)
	before := map[*server]readyz{}
	for _, s := range f.replicas {
		r := s.readyz(t)
		if r.status != http.StatusOK || r.Status != "ok" || r.Checks["changes"] != "up" {
			t.Fatalf("%s before: /readyz %+v, want ok with changes up", s.base, r)
		}
		before[s] = r
	}

	// New sessions are refused until allowConnections(true): the open
	// pool connections keep serving, the listeners cannot come back.
	admin := newPGAdmin(t, f.db)
	admin.allowConnections(t, false)
	allowed := false
	defer func() {
		if !allowed {
			admin.allowConnections(t, true)
		}
	}()
	if n := admin.killListeners(t); n != len(f.replicas) {
		t.Fatalf("terminated %d listener backends, want %d", n, len(f.replicas))
	}
	for _, s := range f.replicas {
		pollUntil(t, 2*time.Second, s.base+" reports its listener down", func() bool {
			return s.metric(t, "agentauthz_change_listener_up") == "0"
		})
		r := s.readyz(t)
		if r.status != http.StatusOK || r.Status != "degraded" || r.Checks["changes"] != "down" || r.Checks["store"] != "ok" {
			t.Errorf("%s while down: /readyz %d %+v, want 200 degraded with changes down and store ok", s.base, r.status, r)
		}
	}

	// No stale allow: B and C refuse the very next request (no notification
	// can reach them), and still serve the live token, from the store.
	f.a.do(t, "DELETE", "/v1/agents/chubes-bot/tokens/"+itoa(revoked.ID), nil, asUser("chubes")).want(t, http.StatusOK)
	for _, s := range others {
		wantInvalidToken(t, s.do(t, "GET", "/v1/whoami", nil, bearer(revoked.Token)), "revoked")
		misses := s.counter(t, `agentauthz_token_lookups_total{cache="miss",outcome="ok"}`)
		s.do(t, "GET", "/v1/whoami", nil, bearer(kept.Token)).want(t, http.StatusOK)
		s.do(t, "GET", "/v1/whoami", nil, bearer(kept.Token)).want(t, http.StatusOK)
		if got := s.counter(t, `agentauthz_token_lookups_total{cache="miss",outcome="ok"}`); got != misses+2 {
			t.Errorf("%s while down: %v store lookups for 2 requests, want 2 (the cache bypassed)", s.base, got-misses)
		}
	}

	admin.allowConnections(t, true)
	allowed = true
	for _, s := range f.replicas {
		pollUntil(t, 10*time.Second, s.base+" reports its listener up again", func() bool {
			return s.metric(t, "agentauthz_change_listener_up") == "1"
		})
		r := s.readyz(t)
		if r.status != http.StatusOK || r.Status != "ok" || r.Checks["changes"] != "up" || r.Checks["changes_since"] <= before[s].Checks["changes_since"] {
			t.Errorf("%s after reconnection: /readyz %+v, want ok with changes up since after %s", s.base, r, before[s].Checks["changes_since"])
		}
		if n := s.counter(t, `agentauthz_change_notifications_total{type="reconnect"}`); n < 1 {
			t.Errorf("%s counted %v reconnections, want ≥ 1", s.base, n)
		}
		// Emptied: the kept token, cached before the outage, is read from
		// the store once more, then cached again.
		misses := s.counter(t, `agentauthz_token_lookups_total{cache="miss",outcome="ok"}`)
		s.cacheFollowing(t, kept.Token)
		if got := s.counter(t, `agentauthz_token_lookups_total{cache="miss",outcome="ok"}`); got != misses+1 {
			t.Errorf("%s after reconnection: %v store lookups, want 1 (cache emptied, then used)", s.base, got-misses)
		}
	}

	// And notifications flow again.
	start := time.Now()
	f.a.do(t, "DELETE", "/v1/agents/chubes-bot/tokens/"+itoa(kept.ID), nil, asUser("chubes")).want(t, http.StatusOK)
	flipsWithin(t, "revoked through A after reconnection", start, others, refused(t, kept.Token, "revoked"))
}
