package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/store/pgtest"
)

// propagationBound is how soon a change committed by another process must
// reach a server whose token cache would otherwise hold it for an hour.
const propagationBound = time.Second

// metric returns the value of one series on the server's /metrics ("" if
// absent).
func (s *server) metric(t *testing.T, series string) string {
	t.Helper()
	r := s.do(t, "GET", "/metrics", nil).want(t, 200)
	for line := range strings.SplitSeq(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// following waits until the server follows the store's changes (its token
// cache is trusted), then resolves tok twice and checks that the second
// lookup was answered from the cache.
func (s *server) cacheFollowing(t *testing.T, tok string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.metric(t, "agentauthz_change_listener_up") != "1" {
		if time.Now().After(deadline) {
			t.Fatal("agentauthz_change_listener_up is not 1 after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A change committed just before (the token's own mint, on SQLite any
	// commit) empties the cache at the follower's next poll, which may
	// fall between the two requests: try again until a second request is
	// a hit, within the deadline.
	for {
		hits := s.metric(t, `agentauthz_token_lookups_total{cache="hit",outcome="ok"}`)
		s.do(t, "GET", "/v1/whoami", nil, bearer(tok)).want(t, 200)
		s.do(t, "GET", "/v1/whoami", nil, bearer(tok)).want(t, 200)
		if s.metric(t, `agentauthz_token_lookups_total{cache="hit",outcome="ok"}`) != hits {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the token is not answered from the cache: the test would prove nothing")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// refusedWithin polls the server with tok until it answers 401 revoked,
// failing after propagationBound; it returns how long that took.
func (s *server) refusedWithin(t *testing.T, tok string, since time.Time) time.Duration {
	t.Helper()
	for {
		r := s.do(t, "GET", "/v1/whoami", nil, bearer(tok))
		if r.status == 401 {
			wantInvalidToken(t, r, "revoked")
			return time.Since(since)
		}
		r.want(t, 200)
		if time.Since(since) > propagationBound {
			t.Fatalf("a revoked token still works after %v (--cache-ttl=1h)", propagationBound)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Two replicas on one PostgreSQL: a token revoked through one is refused
// by the other within the bound, though both cache tokens for an hour.
func TestRevocationThroughOneReplicaReachesTheOtherWithinASecond(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	seedWorld(t, db)
	a := startServer(t, db, "--trusted-proxies=127.0.0.1/32", "--cache-ttl=1h")
	b := startServer(t, db, "--cache-ttl=1h")
	for range 3 {
		tok := mintCLI(t, db, "chubes-bot")
		a.cacheFollowing(t, tok.Token)
		b.cacheFollowing(t, tok.Token)
		start := time.Now()
		a.do(t, "DELETE", "/v1/agents/chubes-bot/tokens/"+itoa(tok.ID), nil, asUser("chubes")).want(t, 200)
		wantInvalidToken(t, a.do(t, "GET", "/v1/whoami", nil, bearer(tok.Token)), "revoked")
		t.Logf("the other replica refused the revoked token after %v", b.refusedWithin(t, tok.Token, start))
	}
	if got := b.metric(t, `agentauthz_change_notifications_total{type="token"}`); got == "" || got == "0" {
		t.Errorf("the other replica counted %q token notifications", got)
	}
}

// One server on a SQLite file: a revocation by the CLI beside it is refused
// within the bound, though the server caches tokens for an hour.
func TestCLIRevocationReachesASQLiteServerWithinASecond(t *testing.T) {
	t.Parallel()
	db := sqliteURL(t)
	seedWorld(t, db)
	srv := startServer(t, db, "--cache-ttl=1h")
	tok := mintCLI(t, db, "chubes-bot")
	srv.cacheFollowing(t, tok.Token)
	cliJSON(t, db, nil, "agents", "token", "revoke", "chubes-bot", itoa(tok.ID))
	t.Logf("the server refused the revoked token %v after the CLI returned", srv.refusedWithin(t, tok.Token, time.Now()))
}
