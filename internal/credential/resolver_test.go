package credential_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/credential"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/principal"
	"github.com/agentauthz/agentauthz/internal/store"
	"github.com/agentauthz/agentauthz/internal/token"
)

// clock is a movable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// countingStore counts hot-path lookups and touches on a real store.
type countingStore struct {
	model.Store
	resolves atomic.Int64
	touches  atomic.Int64
	touched  sync.Map
	// duringResolve, when set, runs inside every ResolveTokenHash (before
	// the read): a test moves its clock there to model a slow store.
	duringResolve func()
}

func (c *countingStore) ResolveTokenHash(ctx context.Context, h string) (model.Resolved, error) {
	c.resolves.Add(1)
	if c.duringResolve != nil {
		c.duringResolve()
	}
	return c.Store.ResolveTokenHash(ctx, h)
}

func (c *countingStore) TouchTokens(ctx context.Context, used map[int64]time.Time) error {
	c.touches.Add(1)
	for id, at := range used {
		c.touched.Store(id, at)
	}
	return c.Store.TouchTokens(ctx, used)
}

type fixture struct {
	st    *countingStore
	agent model.Agent
	owner model.User
	clock *clock
}

// migratedSQLite opens a fresh, migrated SQLite store in tb's temp dir,
// closed when tb ends.
func migratedSQLite(tb testing.TB) *store.SQL {
	tb.Helper()
	ctx := context.Background()
	sq, err := store.Open(ctx, "sqlite:"+filepath.Join(tb.TempDir(), "t.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sq.Close() })
	if err := sq.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return sq
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	sq := migratedSQLite(t)
	u, err := sq.CreateUser(ctx, model.User{Login: "owner", Roles: []string{"editor"}, Status: model.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	a, err := sq.CreateAgent(ctx, model.Agent{Slug: "bot", Name: "bot", OwnerID: u.ID, Status: model.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: &countingStore{Store: sq}, agent: a, owner: u, clock: &clock{now: time.Now().UTC()}}
}

func (f *fixture) issue(t *testing.T, expiresAt *time.Time) (string, model.Token) {
	t.Helper()
	raw, err := token.Generate(token.DefaultPrefix, f.agent.Slug)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.st.CreateToken(context.Background(), model.Token{AgentID: f.agent.ID, Hash: token.Hash(raw), Prefix: token.Hint(raw), ExpiresAt: expiresAt})
	if err != nil {
		t.Fatal(err)
	}
	return raw, tok
}

func (f *fixture) resolver(t *testing.T, ttl time.Duration) *credential.Resolver {
	r := credential.New(f.st, credential.Options{CacheTTL: ttl, TouchInterval: time.Hour, Now: f.clock.Now})
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func reason(err error) string {
	var ae *principal.AuthError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	if err == nil {
		return "ok"
	}
	return "error: " + err.Error()
}

func TestLookupRules(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	r := f.resolver(t, time.Minute)
	raw, tok := f.issue(t, nil)

	p, err := r.LookupRaw(ctx, raw)
	if err != nil {
		t.Fatalf("live token: %v", err)
	}
	if p.Kind != principal.KindToken || p.User == nil || p.User.ID != f.owner.ID || p.Agent.ID != f.agent.ID || p.Token.ID != tok.ID {
		t.Fatalf("live token resolved to %+v; want the agent acting for its owner", p)
	}

	forged, _ := token.Generate(token.DefaultPrefix, f.agent.Slug) // valid checksum, never issued
	flipped := raw[:len(raw)-1] + string("0123456789abcdef"[(stringsIndex(raw[len(raw)-1])+1)%16])
	cases := []struct {
		name, raw, want string
	}{
		{"a token with a broken checksum is rejected before any lookup", flipped, "checksum"},
		{"a string that is not a token is malformed", "datamachine_bot_xyz", "malformed"},
		{"a well-formed token that was never issued is unknown", forged, "unknown"},
		{"another prefix is malformed", "other_bot_" + raw[len(raw)-64:], "malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := f.st.resolves.Load()
			_, err := r.LookupRaw(ctx, c.raw)
			if got := reason(err); got != c.want {
				t.Fatalf("reason = %q, want %q", got, c.want)
			}
			if c.want != "unknown" && f.st.resolves.Load() != before {
				t.Fatalf("a %s token reached the store", c.want)
			}
		})
	}
}

func stringsIndex(b byte) int {
	const hex = "0123456789abcdef"
	for i := 0; i < 16; i++ {
		if hex[i] == b {
			return i
		}
	}
	return 0
}

func TestCachedLookupCostsNoStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	r := f.resolver(t, time.Minute)
	raw, _ := f.issue(t, nil)
	for i := 0; i < 100; i++ {
		if _, err := r.LookupRaw(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.st.resolves.Load(); n != 1 {
		t.Fatalf("100 lookups cost %d store round trips, want 1", n)
	}
}

func TestCacheNeverOutlivesExpiry(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	r := f.resolver(t, time.Hour)
	exp := f.clock.Now().Add(time.Minute)
	raw, _ := f.issue(t, &exp)
	if _, err := r.LookupRaw(ctx, raw); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	f.clock.Add(time.Minute) // expires_at <= now is expired
	if got := reason(mustFail(r.LookupRaw(ctx, raw))); got != "expired" {
		t.Fatalf("at expires_at a cached token resolved: %s", got)
	}
}

func mustFail(_ *principal.Principal, err error) error { return err }

func TestEvictionsApplyAtOnce(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		change func(f *fixture, r *credential.Resolver, tok model.Token)
		want   string
	}{
		{"revoked token fails on the next request", func(f *fixture, r *credential.Resolver, tok model.Token) {
			if _, _, err := f.st.RevokeToken(ctx, f.agent.ID, tok.ID, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
			r.EvictToken(tok.ID)
		}, "revoked"},
		{"deactivated agent is forbidden on the next request", func(f *fixture, r *credential.Resolver, tok model.Token) {
			st := model.StatusInactive
			if _, err := f.st.UpdateAgent(ctx, f.agent.ID, model.AgentPatch{Status: &st}); err != nil {
				t.Fatal(err)
			}
			r.EvictAgent(f.agent.ID)
		}, "agent_inactive"},
		{"deleted agent's token is unknown on the next request", func(f *fixture, r *credential.Resolver, tok model.Token) {
			if _, err := f.st.DeleteAgent(ctx, f.agent.ID); err != nil {
				t.Fatal(err)
			}
			r.EvictAgent(f.agent.ID)
		}, "unknown"},
		{"disabled owner fails on the next request", func(f *fixture, r *credential.Resolver, tok model.Token) {
			st := model.StatusDisabled
			if _, err := f.st.UpdateUser(ctx, f.owner.ID, model.UserPatch{Status: &st}); err != nil {
				t.Fatal(err)
			}
			r.EvictOwner(f.owner.ID)
		}, "owner_disabled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			r := f.resolver(t, time.Hour)
			raw, tok := f.issue(t, nil)
			if _, err := r.LookupRaw(ctx, raw); err != nil {
				t.Fatal(err)
			}
			c.change(f, r, tok)
			if got := reason(mustFail(r.LookupRaw(ctx, raw))); got != c.want {
				t.Fatalf("after the change: %s, want %s", got, c.want)
			}
		})
	}
}

func TestInactiveAgentIsForbidden(t *testing.T) {
	f := newFixture(t)
	r := f.resolver(t, 0)
	raw, _ := f.issue(t, nil)
	st := model.StatusInactive
	if _, err := f.st.UpdateAgent(context.Background(), f.agent.ID, model.AgentPatch{Status: &st}); err != nil {
		t.Fatal(err)
	}
	_, err := r.LookupRaw(context.Background(), raw)
	var ae *principal.AuthError
	if !errors.As(err, &ae) || !ae.Forbidden || ae.Reason != "agent_inactive" {
		t.Fatalf("inactive agent: %v; want a Forbidden agent_inactive error", err)
	}
}

// TestRevokeRacingWithResolves: once RevokeToken+EvictToken has returned, no
// Lookup that starts afterwards may succeed, however the cache fills raced.
func TestRevokeRacingWithResolves(t *testing.T) {
	ctx := context.Background()
	for round := 0; round < 20; round++ {
		f := newFixture(t)
		r := f.resolver(t, time.Hour)
		raw, tok := f.issue(t, nil)
		var revoked atomic.Bool
		var lateSuccess atomic.Int64
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					after := revoked.Load() // read BEFORE the lookup starts
					_, err := r.LookupRaw(ctx, raw)
					if err == nil && after {
						lateSuccess.Add(1)
					}
				}
			}()
		}
		time.Sleep(time.Duration(round%5) * time.Millisecond) // vary the interleaving; not a synchronisation
		if _, _, err := f.st.RevokeToken(ctx, f.agent.ID, tok.ID, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
		r.EvictToken(tok.ID)
		revoked.Store(true)
		deadline := time.Now().Add(50 * time.Millisecond)
		for time.Now().Before(deadline) {
			if _, err := r.LookupRaw(ctx, raw); err == nil {
				lateSuccess.Add(1)
			}
		}
		close(stop)
		wg.Wait()
		if n := lateSuccess.Load(); n != 0 {
			t.Fatalf("round %d: %d lookups started after the revoke returned and still succeeded", round, n)
		}
	}
}

func TestLastUsedWritesAreCoalesced(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	r := credential.New(f.st, credential.Options{CacheTTL: time.Minute, TouchInterval: time.Hour, Now: f.clock.Now})
	raw, tok := f.issue(t, nil)
	raw2, tok2 := f.issue(t, nil)
	for i := 0; i < 10000; i++ {
		f.clock.Add(time.Millisecond)
		if _, err := r.LookupRaw(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.LookupRaw(ctx, raw2); err != nil {
		t.Fatal(err)
	}
	_, _ = r.LookupRaw(ctx, "datamachine_bot_"+raw[len(raw)-64:len(raw)-1]+"x") // a failure is never "used"
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.st.touches.Load(); n != 1 {
		t.Fatalf("10001 successful uses cost %d touch round trips, want 1 flush", n)
	}
	toks, err := f.st.ListTokens(ctx, f.agent.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range toks {
		if x.LastUsedAt == nil {
			t.Fatalf("token %d has no last_used_at after use", x.ID)
		}
		if x.ID == tok.ID && !x.LastUsedAt.Equal(f.clock.Now().Truncate(time.Microsecond)) && x.LastUsedAt.Before(f.clock.Now().Add(-time.Millisecond)) {
			t.Fatalf("token %d last_used_at = %v, want the latest use %v", x.ID, x.LastUsedAt, f.clock.Now())
		}
	}
	_ = tok2
}

// pausingStore holds a lookup between its read and the cache fill, so a
// revocation can land exactly in that window.
type pausingStore struct {
	model.Store
	read, proceed chan struct{}
	once          sync.Once
}

func (p *pausingStore) ResolveTokenHash(ctx context.Context, h string) (model.Resolved, error) {
	res, err := p.Store.ResolveTokenHash(ctx, h)
	p.once.Do(func() {
		close(p.read)
		<-p.proceed
	})
	return res, err
}

// TestRevokeInsideFillWindowIsNotResurrected pins the interleaving the
// stress test above can only hope for: a lookup reads the live token, the
// revocation and eviction complete, then the lookup tries to cache what it
// read. The next lookup must see the revocation.
func TestRevokeInsideFillWindowIsNotResurrected(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	ps := &pausingStore{Store: f.st, read: make(chan struct{}), proceed: make(chan struct{})}
	r := credential.New(ps, credential.Options{CacheTTL: time.Hour, TouchInterval: time.Hour, Now: f.clock.Now})
	t.Cleanup(func() { r.Close(ctx) })
	raw, tok := f.issue(t, nil)

	done := make(chan error, 1)
	go func() { _, err := r.LookupRaw(ctx, raw); done <- err }()
	<-ps.read
	if _, _, err := f.st.RevokeToken(ctx, f.agent.ID, tok.ID, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	r.EvictToken(tok.ID)
	close(ps.proceed)
	<-done // it began before the revoke: either answer is linearizable

	if got := reason(mustFail(r.LookupRaw(ctx, raw))); got != "revoked" {
		t.Fatalf("lookup after the revoke returned: %s, want revoked (a stale fill resurrected the token)", got)
	}
}

// TestCacheExpiriesAreSpreadWithinTheTTL fills the cache with many tokens
// at one instant (a cold start) and shows that they are not all looked up
// again at the same instant, and that none outlives the TTL.
func TestCacheExpiriesAreSpreadWithinTheTTL(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const ttl, n = time.Minute, 200
	r := f.resolver(t, ttl)
	raws := make([]string, n)
	for i := range raws {
		raws[i], _ = f.issue(t, nil)
	}
	t0 := f.clock.Now()
	lookAll := func(when string) int64 {
		t.Helper()
		before := f.st.resolves.Load()
		for _, raw := range raws {
			if _, err := r.LookupRaw(ctx, raw); err != nil {
				t.Fatalf("%s: %v", when, err)
			}
		}
		return f.st.resolves.Load() - before
	}
	if got := lookAll("fill"); got != n {
		t.Fatalf("filling %d tokens cost %d store lookups", n, got)
	}
	// Lifetimes are drawn from (0.9 TTL, TTL]: none has ended at 0.89 TTL,
	f.clock.Add(ttl * 89 / 100)
	if got := lookAll("at 0.89 TTL"); got != 0 {
		t.Fatalf("at 0.89 TTL %d of %d tokens were looked up again, want none", got, n)
	}
	// about half at 0.95 TTL (200 draws: outside [20, 180] has odds below 1e-30),
	f.clock.Add(ttl * 6 / 100)
	refreshed := lookAll("at 0.95 TTL")
	if refreshed < n/10 || refreshed > n-n/10 {
		t.Fatalf("at 0.95 TTL %d of %d tokens were looked up again: expiries are not spread", refreshed, n)
	}
	// and at TTL every entry of the first fill has ended, while those
	// refilled at 0.95 TTL live on.
	f.clock.Add(t0.Add(ttl).Sub(f.clock.Now()))
	if got := lookAll("at TTL"); got != n-refreshed {
		t.Fatalf("at TTL %d tokens were looked up again, want the %d not refilled at 0.95 TTL", got, n-refreshed)
	}
}

// TestCacheLifeCountsFromBeforeTheStoreRead: an entry's life starts when
// its store read began, so a slow read never stretches trust past the TTL,
// and the cache-only path (Cached) ends it at the same instant as Lookup.
func TestCacheLifeCountsFromBeforeTheStoreRead(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const ttl = time.Minute
	r := f.resolver(t, ttl)
	raw, _ := f.issue(t, nil)
	v, err := token.Verify(token.DefaultPrefix, raw)
	if err != nil {
		t.Fatal(err)
	}
	t0 := f.clock.Now()
	f.st.duringResolve = func() { f.clock.Add(20 * time.Second) } // a read that takes a third of the TTL
	if _, err := r.LookupRaw(ctx, raw); err != nil {
		t.Fatal(err)
	}
	f.st.duringResolve = nil
	f.clock.Add(t0.Add(ttl * 89 / 100).Sub(f.clock.Now()))
	if _, ok := r.Cached(v); !ok {
		t.Fatal("at 0.89 TTL after the read began, Cached does not answer")
	}
	f.clock.Add(t0.Add(ttl).Sub(f.clock.Now()))
	if _, ok := r.Cached(v); ok {
		t.Fatal("one TTL after the read began, Cached still answers")
	}
	before := f.st.resolves.Load()
	if _, err := r.LookupRaw(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if f.st.resolves.Load() == before {
		t.Fatal("one TTL after the read began, Lookup answered from the cache")
	}
}
