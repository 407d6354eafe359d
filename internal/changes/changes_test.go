package changes_test

import (
	"context"
	"database/sql"
	"io"
	"net/http/httptest"
	neturl "net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/agentauthz/agentauthz/internal/changes"
	"github.com/agentauthz/agentauthz/internal/credential"
	"github.com/agentauthz/agentauthz/internal/metrics"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/principal"
	"github.com/agentauthz/agentauthz/internal/store"
	"github.com/agentauthz/agentauthz/internal/store/pgtest"
	"github.com/agentauthz/agentauthz/internal/token"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// bound is the propagation bound the tests hold the follower to.
const bound = time.Second

// replica is one server's view: its own store handle, resolver and
// follower; other is a second handle on the same database (another
// replica, or the CLI).
type replica struct {
	st, other *store.SQL
	r         *credential.Resolver
	f         *changes.Follower
	m         *metrics.Metrics
	owner     model.User
	agent     model.Agent
}

func open(t *testing.T, url string) *store.SQL {
	t.Helper()
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newReplica(t *testing.T, url string) *replica {
	t.Helper()
	ctx := context.Background()
	st := open(t, url)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	x := &replica{st: st, other: open(t, url), m: metrics.New()}
	x.r = credential.New(st, credential.Options{CacheTTL: time.Hour, TouchInterval: time.Hour})
	t.Cleanup(func() { x.r.Close(context.Background()) })
	var err error
	opts := changes.Options{Metrics: x.m}
	if st.Dialect() == "postgres" {
		x.f, err = changes.ListenPostgres(url, x.r, opts)
		if err != nil {
			t.Fatal(err)
		}
	} else {
		x.f = changes.PollSQLite(st, x.r, opts)
	}
	t.Cleanup(func() { x.f.Close() })
	x.owner, err = x.other.CreateUser(ctx, model.User{Login: "owner", Roles: []string{"editor"}, Status: model.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	x.agent, err = x.other.CreateAgent(ctx, model.Agent{Slug: "bot", OwnerID: x.owner.ID, Status: model.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the follower comes up", x.f.Up)
	return x
}

// issue creates a token through the other handle and resolves it on the
// replica, which caches it.
func (x *replica) issue(t *testing.T) (string, model.Token) {
	t.Helper()
	return x.issueVia(t, x.other)
}

func (x *replica) issueVia(t *testing.T, st *store.SQL) (string, model.Token) {
	t.Helper()
	raw, _ := token.Generate(token.DefaultPrefix, x.agent.Slug)
	tok, err := st.CreateToken(context.Background(), model.Token{AgentID: x.agent.ID, Hash: token.Hash(raw), Prefix: token.Hint(raw)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.r.LookupRaw(context.Background(), raw); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	if !x.cached(raw) {
		t.Fatal("a resolved token is not cached")
	}
	return raw, tok
}

// cached reports whether the replica would answer raw from its cache.
func (x *replica) cached(raw string) bool {
	v, err := token.Verify(token.DefaultPrefix, raw)
	if err != nil {
		panic(err)
	}
	_, ok := x.r.Cached(v)
	return ok
}

func (x *replica) scrape(t *testing.T, series string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	x.m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(200 * time.Microsecond)
	}
	return time.Since(start)
}

func reason(err error) string {
	if ae, ok := err.(*principal.AuthError); ok {
		return ae.Reason
	}
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func pgURL(t *testing.T) string { return pgtest.NewDatabase(t) }

func sqliteURL(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "t.db") }

// A token revoked through another handle is evicted within the bound;
// reports the propagation latency over many revocations.
func TestRevocationByAnotherWriterIsEvictedWithinBound(t *testing.T) {
	for name, url := range map[string]func(*testing.T) string{"postgres": pgURL, "sqlite": sqliteURL} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			x := newReplica(t, url(t))
			ctx := context.Background()
			// Rounds of revocations committed at once, by concurrent
			// writers, each timed from its own commit to its own eviction:
			// one poll (SQLite) or one burst of notifications (PostgreSQL)
			// carries several changes, and the run waits for a round, not
			// for every revocation in turn.
			rounds, perRound := 10, 5
			if testing.Short() {
				rounds = 2
			}
			var lat []time.Duration
			for range rounds {
				raws := make([]string, perRound)
				toks := make([]model.Token, perRound)
				for i := range perRound {
					raws[i], toks[i] = x.issue(t)
				}
				var mu sync.Mutex
				revokedAt := make([]time.Time, perRound) // zero until committed
				var wg sync.WaitGroup
				for i, tok := range toks {
					wg.Go(func() {
						if _, _, err := x.other.RevokeToken(ctx, x.agent.ID, tok.ID, time.Now()); err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						revokedAt[i] = time.Now()
						mu.Unlock()
					})
				}
				evicted := make([]bool, perRound)
				eventually(t, bound, "every revoked token of the round evicted", func() bool {
					mu.Lock()
					defer mu.Unlock()
					all := true
					for i, raw := range raws {
						if !evicted[i] && !revokedAt[i].IsZero() && !x.cached(raw) {
							evicted[i] = true
							lat = append(lat, time.Since(revokedAt[i]))
						}
						all = all && evicted[i]
					}
					return all
				})
				wg.Wait()
				for _, raw := range raws {
					if _, err := x.r.LookupRaw(ctx, raw); reason(err) != principal.ReasonRevoked {
						t.Fatalf("after revocation: %s, want revoked", reason(err))
					}
				}
			}
			for _, l := range lat {
				if l > bound {
					t.Errorf("a revocation took %v to reach the cache, over the %v bound", l, bound)
				}
			}
			slices.Sort(lat)
			n := len(lat)
			t.Logf("%s: propagation of %d revocations: p50 %v, p90 %v, max %v", name, n, lat[n/2], lat[n*9/10], lat[n-1])
		})
	}
}

// Every kind of change by another writer reaches the cache; last_used_at
// writes do not empty it on PostgreSQL (they name nothing).
func TestEveryKindOfChangePropagates(t *testing.T) {
	x := newReplica(t, pgURL(t))
	ctx := context.Background()
	steps := []struct {
		name   string
		change func() error
	}{
		{"agent status", func() error {
			s := model.StatusInactive
			_, err := x.other.UpdateAgent(ctx, x.agent.ID, model.AgentPatch{Status: &s})
			if err == nil {
				s = model.StatusActive
				_, err = x.other.UpdateAgent(ctx, x.agent.ID, model.AgentPatch{Status: &s})
			}
			return err
		}},
		{"user roles", func() error {
			roles := []string{"viewer"}
			_, err := x.other.UpdateUser(ctx, x.owner.ID, model.UserPatch{Roles: &roles})
			return err
		}},
		{"grant", func() error {
			_, _, err := x.other.PutGrant(ctx, model.Grant{AgentID: x.agent.ID, Principal: "user:someone", Role: "viewer", GrantedAt: time.Now()})
			return err
		}},
		{"grant removed", func() error { return x.other.DeleteGrant(ctx, x.agent.ID, "user:someone") }},
	}
	for _, s := range steps {
		raw, _ := x.issue(t)
		if err := s.change(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		eventually(t, bound, s.name+" evicts the agent's tokens", func() bool { return !x.cached(raw) })
	}

	raw, tok := x.issue(t)
	if err := x.other.TouchTokens(ctx, map[int64]time.Time{tok.ID: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// A later change proves that notifications before it were delivered.
	marker, _ := x.issue(t)
	roles := []string{"editor"}
	if _, err := x.other.UpdateUser(ctx, x.owner.ID+1000, model.UserPatch{Roles: &roles}); err == nil {
		t.Fatal("updating a missing user succeeded")
	}
	s := model.StatusInactive
	other, err := x.other.CreateAgent(ctx, model.Agent{Slug: "other", OwnerID: x.owner.ID, Status: model.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	seen := x.scrape(t, `agentauthz_change_notifications_total{type="agent"}`)
	if _, err := x.other.UpdateAgent(ctx, other.ID, model.AgentPatch{Status: &s}); err != nil {
		t.Fatal(err)
	}
	eventually(t, bound, "the other agent's notification", func() bool {
		return x.scrape(t, `agentauthz_change_notifications_total{type="agent"}`) != seen
	})
	if !x.cached(raw) || !x.cached(marker) {
		t.Fatal("a last_used_at write or another agent's change evicted unrelated tokens")
	}
}

// While the listener's connection is gone the cache is bypassed (a change
// made meanwhile is seen at once); on reconnection it is emptied and
// trusted again.
func TestListenerDownBypassesCacheAndReconnectEmptiesIt(t *testing.T) {
	url := pgURL(t)
	x := newReplica(t, url)
	ctx := context.Background()
	// The maintenance database: a session cannot disallow connections
	// to its own database.
	admin, err := sql.Open("postgres", pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	admin.SetMaxOpenConns(1)
	// Keep open pool connections for the replica and the writer: new ones
	// are refused while connections are disallowed.
	if err := x.st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := x.other.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	raw, tok := x.issue(t)
	kept, _ := x.issue(t)

	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	if _, err := admin.ExecContext(ctx, "ALTER DATABASE "+pq.QuoteIdentifier(dbName)+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	allow := func() {
		if _, err := admin.ExecContext(ctx, "ALTER DATABASE "+pq.QuoteIdentifier(dbName)+" ALLOW_CONNECTIONS true"); err != nil {
			t.Fatal(err)
		}
	}
	defer allow()
	var killed int
	if err := admin.QueryRowContext(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND datname = $2", store.ListenerApplicationName, dbName).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminating the listener's backend: %d terminated, %v", killed, err)
	}
	eventually(t, bound, "the replica stops trusting its cache", func() bool { return !x.f.Up() && !x.r.Trusted() })
	if got := x.scrape(t, "agentauthz_change_listener_up"); got != "0" {
		t.Errorf("agentauthz_change_listener_up = %q while down, want 0", got)
	}
	// Bypassed: a revocation while no notification can arrive is seen at
	// once, and nothing is served from (or put into) the cache.
	if _, _, err := x.other.RevokeToken(ctx, x.agent.ID, tok.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := x.r.LookupRaw(ctx, raw); reason(err) != principal.ReasonRevoked {
		t.Fatalf("while down: %s, want revoked", reason(err))
	}
	if _, err := x.r.LookupRaw(ctx, kept); err != nil {
		t.Fatalf("while down, a live token: %v", err)
	}
	if x.cached(kept) {
		t.Fatal("a lookup filled the cache while the listener was down")
	}

	allow()
	eventually(t, 10*time.Second, "the follower reconnects", x.f.Up)
	if got := x.scrape(t, `agentauthz_change_notifications_total{type="reconnect"}`); got != "1" {
		t.Errorf("reconnect notifications = %q, want 1", got)
	}
	if x.cached(kept) || x.cached(raw) {
		t.Fatal("cache not empty after reconnection")
	}
	if _, err := x.r.LookupRaw(ctx, kept); err != nil || !x.cached(kept) {
		t.Fatalf("after reconnection the cache is not used again: %v", err)
	}
	// And notifications flow again.
	if _, _, err := x.other.RevokeToken(ctx, x.agent.ID, tokenID(t, x, kept), time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, bound, "eviction after reconnection", func() bool { return !x.cached(kept) })
}

func tokenID(t *testing.T, x *replica, raw string) int64 {
	t.Helper()
	res, err := x.st.ResolveTokenHash(context.Background(), token.Hash(raw))
	if err != nil {
		t.Fatal(err)
	}
	return res.Token.ID
}

// A payload that does not parse empties the cache (fail safe).
func TestGarbageNotificationEmptiesTheCache(t *testing.T) {
	url := pgURL(t)
	x := newReplica(t, url)
	ctx := context.Background()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, payload := range []string{"not json", `{"t":"token"}`, `{"t":"group","id":1}`} {
		raw, _ := x.issue(t)
		if _, err := db.ExecContext(ctx, "SELECT pg_notify($1, $2)", store.ChangeChannel, payload); err != nil {
			t.Fatal(err)
		}
		eventually(t, bound, "garbage "+payload+" empties the cache", func() bool { return !x.cached(raw) })
		if !x.f.Up() {
			t.Fatal("a garbage payload took the follower down")
		}
	}
	if got := x.scrape(t, `agentauthz_change_notifications_total{type="invalid"}`); got != "3" {
		t.Errorf("invalid notifications = %q, want 3", got)
	}
}

// On SQLite this process's own writes (one pooled connection) do not
// change data_version, so they do not empty the cache; another
// connection's do.
func TestSQLiteOwnWritesKeepTheCache(t *testing.T) {
	x := newReplica(t, sqliteURL(t))
	ctx := context.Background()
	raw, tok := x.issue(t)
	before, err := x.st.DataVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.st.TouchTokens(ctx, map[int64]time.Time{tok.ID: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if after, _ := x.st.DataVersion(ctx); after != before {
		t.Fatalf("own write changed data_version %d → %d", before, after)
	}
	if err := x.other.TouchTokens(ctx, map[int64]time.Time{tok.ID: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if after, _ := x.st.DataVersion(ctx); after == before {
		t.Fatal("another connection's commit left data_version unchanged")
	}
	eventually(t, bound, "another process's commit empties the cache", func() bool { return !x.cached(raw) })
	raw2, _ := x.issueVia(t, x.st)
	if err := x.st.TouchTokens(ctx, map[int64]time.Time{tok.ID: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// Two poll periods later the entry is still there.
	deadline := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(deadline) {
		if !x.cached(raw2) {
			t.Fatal("an own write emptied the cache")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Deleting an agent with many tokens notifies once per token: the burst
// empties the cache at once rather than scanning it per token.
func TestBurstOfNotificationsEmptiesTheCache(t *testing.T) {
	x := newReplica(t, pgURL(t))
	ctx := context.Background()
	var raws []string
	for range 3 * 64 {
		raw, _ := x.issue(t)
		raws = append(raws, raw)
	}
	if _, err := x.other.DeleteAgent(ctx, x.agent.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, bound, "every token of the deleted agent evicted", func() bool {
		return !slices.ContainsFunc(raws, x.cached)
	})
	for _, raw := range raws[:3] {
		if _, err := x.r.LookupRaw(ctx, raw); reason(err) != principal.ReasonUnknown {
			t.Fatalf("a token of a deleted agent: %s, want unknown", reason(err))
		}
	}
}

// State says whether the follower is up, since when, and when it last
// learned of another writer's change, on both stores; once closed it is
// down, since the close.
func TestStateReportsUpSinceAndLastChange(t *testing.T) {
	for _, c := range []struct {
		name string
		url  func(*testing.T) string
	}{{"postgres", pgURL}, {"sqlite", sqliteURL}} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			x := newReplica(t, c.url(t))
			s := x.f.State()
			if !s.Up || s.Since.Before(start) {
				t.Fatalf("after start: %+v, want up since after %v", s, start)
			}
			before := time.Now()
			raw, tok := x.issue(t)
			if _, _, err := x.other.RevokeToken(context.Background(), x.agent.ID, tok.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
			eventually(t, bound, "the revocation is evicted", func() bool { return !x.cached(raw) })
			eventually(t, bound, "the change is noted", func() bool { return !x.f.State().LastChange.Before(before) })
			if got := x.f.State(); !got.Up || !got.Since.Equal(s.Since) {
				t.Fatalf("after a change: %+v, want still up since %v", got, s.Since)
			}
			closed := time.Now()
			x.f.Close()
			if got := x.f.State(); got.Up || got.Since.Before(closed) {
				t.Fatalf("after Close: %+v, want down since after %v", got, closed)
			}
		})
	}
}
