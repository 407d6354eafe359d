package credential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentauthz/agentauthz/internal/metrics"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/principal"
	"github.com/agentauthz/agentauthz/internal/token"
)

// Options configures a Resolver. Zero values take the documented defaults.
type Options struct {
	// Prefix is the token prefix this deployment issues (default "datamachine").
	Prefix string
	// CacheTTL bounds how long a resolved token is trusted without asking the
	// store again (the server's default is 60s). Changes made by other
	// processes arrive sooner through internal/changes, which calls the
	// Evict methods and SetTrusted; without it, CacheTTL is the staleness
	// bound for them. Each entry lives CacheTTL less up to a tenth of it,
	// drawn at random, on the Now clock.
	// Zero or negative disables the cache; a positive value under 1ms is
	// taken as 1ms (the LRU's expiry ticker needs at least 100ns).
	CacheTTL time.Duration
	// CacheSize bounds the number of cached tokens (default DefaultCacheSize).
	CacheSize int
	// NegativeTTL is how long a token hash the store does not know is
	// answered "unknown" without asking again, so that repeating a forged
	// token (well-formed, valid checksum) costs one store query per TTL
	// rather than one per request. Zero or negative disables it (the
	// server's default is 5s); a positive value under 1ms is taken as 1ms.
	// See negativeCache for why it is sound.
	NegativeTTL time.Duration
	// NegativeSize bounds the number of remembered unknown hashes (default
	// 10000); the least recently seen are forgotten first.
	NegativeSize int
	// TouchInterval is how often coalesced last_used_at writes are flushed
	// (default 5s).
	TouchInterval time.Duration
	// TouchMinInterval is the least time between two last_used_at writes of
	// one token by this process: a use within it is held back (not lost)
	// until it has passed, so writes follow the working set (about active
	// tokens ÷ TouchMinInterval per second) rather than the request rate,
	// and last_used_at is accurate to max(TouchInterval, TouchMinInterval).
	// Zero or negative writes every token used at every flush (the server's
	// default is 60s). Close writes everything held back.
	TouchMinInterval time.Duration
	// TouchMemory bounds the number of tokens whose last write time is
	// remembered for TouchMinInterval; a token used beyond it is written at
	// every flush, as without a minimum. Default: CacheSize ×
	// ⌈TouchMinInterval ÷ CacheTTL⌉ (CacheTTL taken as 5s when the cache is
	// off), at least CacheSize: a cache sized for rate × CacheTTL implies
	// at most rate × TouchMinInterval tokens written per TouchMinInterval.
	// An entry costs about 20-40 bytes.
	TouchMemory int
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics counts lookups by outcome; nil records nothing.
	Metrics *metrics.Metrics
}

// Entry is a resolved, cached credential; read-only once published.
type Entry struct {
	Resolved model.Resolved
	// until is when the cache stops trusting the entry: the time its store
	// read began plus CacheTTL less up to a tenth of it, drawn at random
	// (ttlJitter), so tokens filled together, as after a start, are not all
	// looked up again in the same instant one TTL later.
	until time.Time
}

// ttlJitter is the largest share of CacheTTL an entry's life is shortened
// by: never lengthened, so CacheTTL stays the staleness bound.
const ttlJitter = 10

// MeanEntryLife is how long a cache entry lives on average under ttl: the
// TTL less half the most it is shortened by (for a model of the cache, such
// as the load harness's settled hit share).
func MeanEntryLife(ttl time.Duration) time.Duration { return ttl - ttl/ttlJitter/2 }

// life draws an entry's lifetime: CacheTTL less up to CacheTTL/ttlJitter.
func (r *Resolver) life() time.Duration {
	if j := r.opts.CacheTTL / ttlJitter; j > 0 {
		return r.opts.CacheTTL - rand.N(j)
	}
	return r.opts.CacheTTL
}

// Resolver resolves raw bearer tokens; it implements principal.TokenLookup.
type Resolver struct {
	st    model.Store
	opts  Options
	cache *expirable.LRU[string, *Entry] // by token hash; nil when disabled
	// negative holds hashes the store did not know; nil when disabled.
	negative     *expirable.LRU[string, struct{}]
	negativeHits prometheus.Counter
	mu           sync.Mutex    // serialises fills against evictions
	epoch        atomic.Uint64 // bumped by every eviction
	// untrusted is set while this process cannot learn of changes made by
	// other processes (a change follower is down): the cache is then
	// neither read nor filled, so every lookup asks the store.
	untrusted atomic.Bool
	touch     *toucher
	logger    *slog.Logger
}

// DefaultCacheSize is the token cache's size unless Options.CacheSize says
// otherwise (serve --cache-size's default): a working set of 10,000 tokens
// in use within the TTL, ~11 MB of heap when full (BenchmarkCachedTokenHeap).
const DefaultCacheSize = 10000

// New builds a Resolver over st and starts its last-used flusher; call Close
// to flush and stop it.
func New(st model.Store, opts Options) *Resolver {
	if opts.Prefix == "" {
		opts.Prefix = token.DefaultPrefix
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.CacheTTL > 0 && opts.CacheTTL < time.Millisecond {
		opts.CacheTTL = time.Millisecond
	}
	if opts.NegativeTTL > 0 && opts.NegativeTTL < time.Millisecond {
		opts.NegativeTTL = time.Millisecond
	}
	if opts.NegativeSize <= 0 {
		opts.NegativeSize = 10000
	}
	if opts.TouchInterval <= 0 {
		opts.TouchInterval = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TouchMemory <= 0 {
		opts.TouchMemory = defaultTouchMemory(opts.CacheSize, opts.CacheTTL, opts.TouchMinInterval)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Resolver{st: st, opts: opts, logger: opts.Logger}
	if opts.CacheTTL > 0 {
		r.cache = expirable.NewLRU[string, *Entry](opts.CacheSize, nil, opts.CacheTTL)
	}
	if opts.NegativeTTL > 0 {
		r.negative = expirable.NewLRU[string, struct{}](opts.NegativeSize, nil, opts.NegativeTTL)
		r.negativeHits = opts.Metrics.NegativeCacheHits()
	}
	r.touch = newToucher(st, toucherOptions{
		every: opts.TouchInterval, minInterval: opts.TouchMinInterval, memory: opts.TouchMemory,
		now: opts.Now, logger: opts.Logger,
		rows: opts.Metrics.LastUsedRowsWritten(), deferred: opts.Metrics.LastUsedDeferred(),
	})
	return r
}

// defaultTouchMemory is Options.TouchMemory's default.
func defaultTouchMemory(cacheSize int, cacheTTL, minInterval time.Duration) int {
	if cacheTTL <= 0 {
		cacheTTL = 5 * time.Second
	}
	n := 1
	if minInterval > cacheTTL {
		n = int((minInterval + cacheTTL - 1) / cacheTTL)
	}
	return cacheSize * n
}

// Close flushes pending last_used_at writes and stops the flusher.
func (r *Resolver) Close(ctx context.Context) error { return r.touch.close(ctx) }

// Lookup resolves a verified token into a token principal acting for the agent's owner.
// Failures are *principal.AuthError values (401, or 403 for an inactive
// agent); a store failure is returned as is (wrapping model.ErrUnavailable)
// so the caller can answer 503. Nothing here ever falls back.
func (r *Resolver) Lookup(ctx context.Context, t token.Verified) (*principal.Principal, error) {
	hash := t.Hash()
	e, cached, err := r.entry(ctx, hash)
	if err == nil {
		err = r.live(e)
	}
	if r.opts.Metrics != nil {
		cache := "miss"
		if cached {
			cache = "hit"
		}
		r.opts.Metrics.TokenLookup(outcome(err), cache)
	}
	if err != nil {
		return nil, err
	}
	r.touch.used(e.Resolved.Token.ID, r.opts.Now())
	return principalFor(e), nil
}

// Cached resolves t from the token cache alone, never asking the store:
// a credential this process already holds, still live. The bearer resolver
// asks it for a client that has spent its failed-authentication budget, so
// valid tokens behind a shared address keep working while guesses do not.
func (r *Resolver) Cached(t token.Verified) (*principal.Principal, bool) {
	if r.cache == nil || r.untrusted.Load() {
		return nil, false
	}
	e, ok := r.cache.Get(t.Hash())
	if !ok || !r.opts.Now().Before(e.until) || r.live(e) != nil {
		return nil, false
	}
	r.touch.used(e.Resolved.Token.ID, r.opts.Now())
	return principalFor(e), true
}

// LookupRaw verifies raw with the configured prefix and looks it up: for
// callers that hold a raw token outside a request (tests, tools).
func (r *Resolver) LookupRaw(ctx context.Context, raw string) (*principal.Principal, error) {
	t, err := token.Verify(r.opts.Prefix, raw)
	if err != nil {
		ae := principal.VerifyFailure(err)
		r.opts.Metrics.TokenLookup(ae.Reason, "none")
		return nil, ae
	}
	return r.Lookup(ctx, t)
}

// outcome names a lookup result for metrics.
func outcome(err error) string {
	var ae *principal.AuthError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ae):
		return ae.Reason
	default:
		return "error"
	}
}

// entry returns the cached entry for hash (cached=true), the cached verdict
// that the hash is unknown (cached=true), or fills either from the store.
func (r *Resolver) entry(ctx context.Context, hash string) (e *Entry, cached bool, err error) {
	start := r.opts.Now()
	if r.cache != nil && !r.untrusted.Load() {
		if e, ok := r.cache.Get(hash); ok && start.Before(e.until) {
			return e, true, nil
		}
	}
	if r.negative != nil {
		if _, ok := r.negative.Get(hash); ok {
			r.negativeHits.Inc()
			return nil, true, &principal.AuthError{Reason: principal.ReasonUnknown}
		}
	}
	before := r.epoch.Load()
	res, err := r.st.ResolveTokenHash(ctx, hash)
	if errors.Is(err, model.ErrNotFound) {
		r.rememberUnknown(hash)
		return nil, false, &principal.AuthError{Reason: principal.ReasonUnknown}
	}
	if err != nil {
		// A store failure says nothing about the hash: never cached.
		return nil, false, fmt.Errorf("resolve token: %w", err)
	}
	// The lookup was by hash; compare again in constant time so a store
	// that matched loosely can never hand back another token.
	if !token.EqualHash(res.Token.Hash, hash) {
		r.rememberUnknown(hash)
		return nil, false, &principal.AuthError{Reason: principal.ReasonUnknown}
	}
	// Equal in content: keep one copy, the cache key's, not a second one
	// per entry.
	res.Token.Hash = hash
	e = &Entry{Resolved: res, until: start.Add(r.life())}
	if r.cache != nil {
		r.mu.Lock()
		// An eviction that ran while we read the store may concern this
		// token; publishing what we read could resurrect it. Nor is
		// anything published while the cache is not trusted.
		if r.epoch.Load() == before && !r.untrusted.Load() {
			r.cache.Add(hash, e)
		}
		r.mu.Unlock()
	}
	return e, false, nil
}

// rememberUnknown records that the store does not know hash (the negative
// cache).
//
// Why a negative entry cannot hide a token that works: a token's raw value
// carries 28 bytes from crypto/rand and is handed out only after its row is
// committed, and its hash is SHA-256 of that value. Nobody can therefore
// present a token, and so create a negative entry for its hash, before the
// row exists — except by guessing 224 random bits. Every lookup of a real
// token's hash happens after its creation and finds it; a negative entry
// can only ever be for a hash no token had when it was cached, and a token
// created later has, with overwhelming probability, another hash. This
// holds across processes sharing the store (the raw value reaches a client
// only after the creating transaction committed), as long as the store
// reads its own committed writes (one database, no lagging replica).
//
// Revocation, expiry and deactivation never turn a known hash into an
// unknown one (the row stays; deleting an agent deletes its tokens, and an
// "unknown" verdict for those is right), so no eviction path needs to touch
// the negative cache: it can only make failures cheaper, never successes
// fail.
func (r *Resolver) rememberUnknown(hash string) {
	if r.negative != nil {
		r.negative.Add(hash, struct{}{})
	}
}

// live applies the liveness rules to an entry, cached or fresh.
func (r *Resolver) live(e *Entry) error {
	return Live(&e.Resolved, r.opts.Now())
}

// Live applies the liveness rules of a bearer token to a resolved token at
// now: not revoked (nor its lineage), not expired, owner present and
// active, agent active. A failure is a *principal.AuthError. Every path
// that accepts a token, by hash or by id, uses these rules.
func Live(res *model.Resolved, now time.Time) error {
	t, a, o := res.Token, res.Agent, res.Owner
	switch {
	case t.RevokedAt != nil, res.LineageEnded:
		return &principal.AuthError{Reason: principal.ReasonRevoked}
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		return &principal.AuthError{Reason: principal.ReasonExpired}
	case o == nil:
		return &principal.AuthError{Reason: principal.ReasonOwnerMissing}
	case o.Status != model.StatusActive:
		return &principal.AuthError{Reason: principal.ReasonOwnerDisabled}
	case a.Status != model.StatusActive:
		return &principal.AuthError{Reason: principal.ReasonAgentInactive, Forbidden: true}
	}
	return nil
}

func principalFor(e *Entry) *principal.Principal {
	res := &e.Resolved
	return principal.ForToken(&res.Token, &res.Agent, res.Owner)
}

// EvictToken drops a token from the cache (after revocation).
func (r *Resolver) EvictToken(tokenID int64) {
	r.evictWhere(func(e *Entry) bool { return e.Resolved.Token.ID == tokenID })
}

// EvictAgent drops every token of an agent (after update, deactivation,
// deletion or revoke-all).
func (r *Resolver) EvictAgent(agentID int64) {
	r.evictWhere(func(e *Entry) bool { return e.Resolved.Agent.ID == agentID })
}

// EvictOwner drops every token whose agent belongs to a user (after the
// user's roles or status change).
func (r *Resolver) EvictOwner(userID int64) {
	r.evictWhere(func(e *Entry) bool { return e.Resolved.Agent.OwnerID == userID })
}

// evictWhere is the single eviction path. Evictions are rare (admin
// actions), so a scan of the bounded cache is cheaper than keeping indexes
// consistent on the hot path.
func (r *Resolver) evictWhere(match func(*Entry) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.epoch.Add(1)
	if r.cache == nil {
		return
	}
	for _, k := range r.cache.Keys() {
		if e, ok := r.cache.Peek(k); ok && match(e) {
			r.cache.Remove(k)
		}
	}
}

// EvictAll empties the token cache: for a change whose extent is unknown
// (another process committed something, a notification that does not
// parse, notifications possibly lost). The negative cache is kept (see
// rememberUnknown).
func (r *Resolver) EvictAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.epoch.Add(1)
	if r.cache != nil {
		r.cache.Purge()
	}
}

// SetTrusted says whether this process currently learns of every change
// made by other processes (see internal/changes). SetTrusted(false) makes
// every lookup ask the store, fills nothing and empties the cache;
// SetTrusted(true) empties the cache again and then uses it, so nothing
// read before or during the untrusted period is ever served. A lookup that
// read the store before the switch does not publish its result (the epoch
// guard). A new Resolver trusts its cache.
func (r *Resolver) SetTrusted(trusted bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.epoch.Add(1)
	if r.cache != nil {
		r.cache.Purge()
	}
	r.untrusted.Store(!trusted)
}

// Trusted reports whether the cache is in use (see SetTrusted).
func (r *Resolver) Trusted() bool { return !r.untrusted.Load() }
