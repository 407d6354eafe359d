package principal

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/agentauthz/agentauthz/internal/metrics"
)

// Defaults of ThrottleOptions.
const (
	DefaultFailureBurst    = 20
	DefaultFailureRefill   = time.Second
	DefaultThrottleClients = 10000
)

// ThrottleOptions configures a FailureThrottle. Zero values take the defaults.
type ThrottleOptions struct {
	// Burst is how many failed bearer authentications a client may make
	// before it is refused (default DefaultFailureBurst).
	Burst int
	// Refill is the interval after which a client may fail once more
	// (default DefaultFailureRefill): the sustained rate is one failure
	// per Refill.
	Refill time.Duration
	// Clients bounds the number of clients remembered (default
	// DefaultThrottleClients); the least recently failing is forgotten first.
	Clients int
	// TrustedProxies are the networks of trusted reverse proxies (the same
	// as TrustedProxy.Networks): a request whose TCP peer is one of them is
	// counted against the rightmost X-Forwarded-For address outside them.
	// From any other peer X-Forwarded-For is ignored.
	TrustedProxies []netip.Prefix
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Metrics counts refused attempts; nil records nothing.
	Metrics *metrics.Metrics
}

// FailureThrottle limits failed bearer authentications per client with a
// token bucket per client address: every failure that shows the client
// does not hold a genuine token (malformed, bad checksum, unknown) takes
// one token; tokens come back one per Refill up to Burst. While a client's
// bucket is empty, EVERY bearer attempt from it is refused before parsing
// or lookup, a valid token included: serving valid tokens would need the
// store lookup the throttle exists to spare, and would let a guesser keep
// testing guesses at full speed (only the misses would be refused).
// Successful authentications never take a token, so a client that does not
// fail is never limited.
//
// A client is an IPv4 address or an IPv6 /64 (one host's usual
// allocation, so a single host cannot escape by rotating addresses).
type FailureThrottle struct {
	burst   float64
	refill  time.Duration
	trusted []netip.Prefix
	now     func() time.Time
	clients *lru.Cache[netip.Prefix, *bucket]
	refused func()
}

// NewFailureThrottle builds a throttle; see ThrottleOptions for defaults.
func NewFailureThrottle(opts ThrottleOptions) *FailureThrottle {
	if opts.Burst <= 0 {
		opts.Burst = DefaultFailureBurst
	}
	if opts.Refill <= 0 {
		opts.Refill = DefaultFailureRefill
	}
	if opts.Clients <= 0 {
		opts.Clients = DefaultThrottleClients
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	clients, err := lru.New[netip.Prefix, *bucket](opts.Clients)
	if err != nil { // only for a non-positive size, excluded above
		panic(err)
	}
	refused := opts.Metrics.AuthThrottled()
	return &FailureThrottle{
		burst: float64(opts.Burst), refill: opts.Refill, trusted: opts.TrustedProxies,
		now: opts.Now, clients: clients, refused: refused.Inc,
	}
}

// Client returns the address a request's failures are counted against.
func (f *FailureThrottle) Client(r *http.Request) netip.Prefix {
	addr, ok := peerAddr(r.RemoteAddr)
	if !ok {
		// Not an IP peer (a unix socket): all such peers share a bucket.
		return netip.Prefix{}
	}
	if f.trusts(addr) {
		if fwd, ok := forwardedClient(r.Header.Values("X-Forwarded-For"), f.trusts); ok {
			addr = fwd
		}
	}
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}

func (f *FailureThrottle) trusts(a netip.Addr) bool {
	for _, n := range f.trusted {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedClient returns the rightmost X-Forwarded-For address that is not
// a trusted proxy: everything left of it was written by the client and can
// be forged, everything right of it by our own proxies. ok is false when
// the header is absent or its nearest hop is unreadable.
func forwardedClient(values []string, trusted func(netip.Addr) bool) (netip.Addr, bool) {
	hops := strings.Split(strings.Join(values, ","), ",")
	var client netip.Addr
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if hop == "" {
			continue
		}
		a, ok := peerAddr(hop)
		if !ok {
			break // unreadable: stop at the last hop we could read
		}
		client = a
		if !trusted(a) {
			break
		}
	}
	return client, client.IsValid()
}

// Allow reports whether client may attempt a bearer authentication; when it
// may not, wait is how long until it may. The caller counts a refusal it
// actually answers with Refused.
func (f *FailureThrottle) Allow(client netip.Prefix) (wait time.Duration, ok bool) {
	b, found := f.clients.Peek(client)
	if !found {
		return 0, true
	}
	return b.allow(f.now(), f.burst, f.refill)
}

// Refused counts an attempt answered 429.
func (f *FailureThrottle) Refused() { f.refused() }

// Fail takes one token from client's bucket. Attempts admitted concurrently
// may drive the bucket below zero; the debt is repaid before the client is
// admitted again, so concurrency does not buy extra failures.
func (f *FailureThrottle) Fail(client netip.Prefix) {
	b, found := f.clients.Get(client)
	if !found {
		fresh := &bucket{tokens: f.burst, at: f.now()}
		if prev, had, _ := f.clients.PeekOrAdd(client, fresh); had {
			b = prev
		} else {
			b = fresh
		}
	}
	b.take(f.now(), f.burst, f.refill)
}

// countsAsFailure reports whether err shows that the caller does not hold a
// genuine token. A genuine token that no longer works (revoked, expired,
// inactive agent, owner disabled) is not counted: it guesses nothing, is
// answered from the token cache, and counting it would let one stale agent
// lock out every other client behind the same address.
func countsAsFailure(err error) bool {
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Source != SourceAuthorization {
		return false
	}
	switch ae.Reason {
	case ReasonMalformed, ReasonChecksum, ReasonUnknown:
		return true
	}
	return false
}

// bucket is one client's token bucket.
type bucket struct {
	mu     sync.Mutex
	tokens float64   // may be negative (debt from concurrent failures)
	at     time.Time // when tokens was last brought up to date
}

// refillLocked brings tokens up to now.
func (b *bucket) refillLocked(now time.Time, burst float64, refill time.Duration) {
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(burst, b.tokens+float64(elapsed)/float64(refill))
		b.at = now
	}
}

func (b *bucket) allow(now time.Time, burst float64, refill time.Duration) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refillLocked(now, burst, refill)
	if b.tokens >= 1 {
		return 0, true
	}
	return time.Duration((1 - b.tokens) * float64(refill)), false
}

func (b *bucket) take(now time.Time, burst float64, refill time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refillLocked(now, burst, refill)
	b.tokens--
}
