package principal

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// throttleClock is a movable clock for the throttle.
type throttleClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *throttleClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *throttleClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newThrottle(t *testing.T, burst int, refill time.Duration, trusted ...string) (*FailureThrottle, *throttleClock) {
	t.Helper()
	nets, err := ParseNetworks(trusted)
	if err != nil {
		t.Fatal(err)
	}
	clk := &throttleClock{now: time.Date(2026, 3, 18, 12, 0, 0, 0, time.UTC)}
	return NewFailureThrottle(ThrottleOptions{Burst: burst, Refill: refill, TrustedProxies: nets, Now: clk.Now}), clk
}

func throttled(err error) (*ThrottledError, bool) {
	var te *ThrottledError
	return te, errors.As(err, &te)
}

func TestThrottleRefusesEveryBearerAttemptAfterBurstFailuresWithoutLookup(t *testing.T) {
	raw := mustToken(t)
	th, clk := newThrottle(t, 3, 10*time.Second)
	lookup := &fakeLookup{known: raw}
	chain := Chain{BearerToken{Lookup: lookup, Throttle: th}, AllowAnonymous{}}
	const attacker, neighbour = "203.0.113.9:4000", "198.51.100.7:5000"

	for i := range 3 {
		_, err := chain.Resolve(request(attacker, "Authorization", "Bearer "+mustToken(t)))
		check(t, nil, err, want{reason: ReasonUnknown})
		if lookup.calls != i+1 {
			t.Fatalf("failure %d: %d lookups, want %d", i+1, lookup.calls, i+1)
		}
	}
	calls := lookup.calls
	for _, c := range []struct{ name, auth string }{
		{"an unknown token", "Bearer " + mustToken(t)},
		{"a valid token", "Bearer " + raw},
		{"a malformed token", "Bearer datamachine_garbage"},
	} {
		_, err := chain.Resolve(request(attacker, "Authorization", c.auth))
		te, ok := throttled(err)
		if !ok {
			t.Fatalf("%s from the limited client: got %v, want a ThrottledError", c.name, err)
		}
		if te.RetryAfter <= 0 || te.RetryAfter > 10*time.Second {
			t.Errorf("%s: RetryAfter = %v, want within one refill interval", c.name, te.RetryAfter)
		}
	}
	if lookup.calls != calls {
		t.Fatalf("a refused attempt reached the lookup (%d calls, want %d)", lookup.calls, calls)
	}

	// Another client is unaffected, and so is the limited client without a
	// bearer token (the throttle guards bearer authentication only).
	p, err := chain.Resolve(request(neighbour, "Authorization", "Bearer "+raw))
	check(t, p, err, want{kind: KindToken, id: "token:12"})
	p, err = chain.Resolve(request(attacker))
	check(t, p, err, want{kind: KindAnonymous, id: PublicAudience})

	// One refill interval buys exactly one more attempt.
	clk.Add(10 * time.Second)
	p, err = chain.Resolve(request(attacker, "Authorization", "Bearer "+raw))
	check(t, p, err, want{kind: KindToken, id: "token:12"})
	_, err = chain.Resolve(request(attacker, "Authorization", "Bearer "+mustToken(t)))
	check(t, nil, err, want{reason: ReasonUnknown})
	if _, ok := throttled(func() error { _, err := chain.Resolve(request(attacker, "Authorization", "Bearer "+raw)); return err }()); !ok {
		t.Fatal("the refilled attempt was spent, yet the next one was admitted")
	}
}

func TestThrottleNeverCountsSuccessesOrGenuineButDeadTokens(t *testing.T) {
	raw := mustToken(t)
	th, _ := newThrottle(t, 2, time.Hour)
	const client = "203.0.113.9:4000"

	ok := Chain{BearerToken{Lookup: &fakeLookup{known: raw}, Throttle: th}}
	for range 50 {
		p, err := ok.Resolve(request(client, "Authorization", "Bearer "+raw))
		check(t, p, err, want{kind: KindToken, id: "token:12"})
	}
	revoked := Chain{BearerToken{Lookup: &fakeLookup{err: &AuthError{Reason: ReasonRevoked}}, Throttle: th}}
	for range 10 {
		_, err := revoked.Resolve(request(client, "Authorization", "Bearer "+raw))
		check(t, nil, err, want{reason: ReasonRevoked})
	}
	// A store failure is no evidence against the client either.
	down := Chain{BearerToken{Lookup: &fakeLookup{err: errors.New("store down")}, Throttle: th}}
	for range 10 {
		if _, err := down.Resolve(request(client, "Authorization", "Bearer "+raw)); err == nil {
			t.Fatal("store failure resolved")
		}
	}
	if wait, allowed := th.Allow(th.Client(request(client))); !allowed {
		t.Fatalf("client refused (wait %v) after successes, revoked and store failures only", wait)
	}
	// Failures the resolver sees before any lookup count: checksum, malformed.
	_, err := ok.Resolve(request(client, "Authorization", "Bearer "+badChecksum(raw)))
	check(t, nil, err, want{reason: ReasonChecksum})
	_, err = ok.Resolve(request(client, "Authorization", "Bearer "))
	check(t, nil, err, want{reason: ReasonMalformed})
	if _, err := ok.Resolve(request(client, "Authorization", "Bearer "+raw)); err == nil {
		t.Fatal("a client that failed twice with burst 2 was admitted")
	} else if _, ok := throttled(err); !ok {
		t.Fatalf("got %v, want a ThrottledError", err)
	}
}

func TestThrottleConcurrentFailuresRunUpADebt(t *testing.T) {
	th, clk := newThrottle(t, 2, time.Second)
	client := th.Client(request("203.0.113.9:4000"))
	// Five attempts admitted while the bucket was full, all failing.
	for range 5 {
		th.Fail(client)
	}
	wait, ok := th.Allow(client)
	if ok || wait != 4*time.Second {
		t.Fatalf("after 5 failures with burst 2: Allow = (%v, %v), want refused for 4s", wait, ok)
	}
	clk.Add(4 * time.Second)
	if _, ok := th.Allow(client); !ok {
		t.Fatal("debt repaid, yet still refused")
	}
}

func TestThrottleClientAddress(t *testing.T) {
	th, _ := newThrottle(t, 1, time.Second, "10.0.0.0/8", "fd00::/8")
	pfx := netip.MustParsePrefix
	cases := []struct {
		name    string
		remote  string
		headers []string
		want    netip.Prefix
	}{
		{"an untrusted peer is the client", "203.0.113.9:4000", nil, pfx("203.0.113.9/32")},
		{"X-Forwarded-For from an untrusted peer is ignored", "203.0.113.9:4000",
			[]string{"X-Forwarded-For", "198.51.100.1"}, pfx("203.0.113.9/32")},
		{"behind a trusted proxy the forwarded address is the client", "10.1.2.3:4000",
			[]string{"X-Forwarded-For", "198.51.100.1"}, pfx("198.51.100.1/32")},
		{"the rightmost untrusted hop wins over forged hops to its left", "10.1.2.3:4000",
			[]string{"X-Forwarded-For", "192.0.2.66, 198.51.100.1, 10.9.9.9"}, pfx("198.51.100.1/32")},
		{"hops across repeated headers are read in order", "10.1.2.3:4000",
			[]string{"X-Forwarded-For", "192.0.2.66", "X-Forwarded-For", "198.51.100.1"}, pfx("198.51.100.1/32")},
		{"a trusted proxy without X-Forwarded-For is itself the client", "10.1.2.3:4000", nil, pfx("10.1.2.3/32")},
		{"an unreadable nearest hop leaves the proxy as the client", "10.1.2.3:4000",
			[]string{"X-Forwarded-For", "198.51.100.1, garbage"}, pfx("10.1.2.3/32")},
		{"an IPv6 client is its /64", "[2001:db8:1:2:3:4:5:6]:4000", nil, pfx("2001:db8:1:2::/64")},
		{"an IPv4-mapped peer is its IPv4 address", "[::ffff:203.0.113.9]:4000", nil, pfx("203.0.113.9/32")},
		{"a forwarded IPv6 client with a port is its /64", "[fd00::1]:4000",
			[]string{"X-Forwarded-For", "[2001:db8::7]:1234"}, pfx("2001:db8::/64")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := th.Client(request(c.remote, c.headers...)); got != c.want {
				t.Fatalf("Client = %v, want %v", got, c.want)
			}
		})
	}
}

func TestProxyFailuresNameTheirHeader(t *testing.T) {
	cases := []struct {
		name    string
		req     []string
		reason  string
		source  Source
		header  string
		hasInfo bool
	}{
		{"unknown user", []string{"X-Forwarded-User", "mallory"}, ReasonUnknown, SourceProxyUser, "X-Forwarded-User", false},
		{"disabled user", []string{"X-Forwarded-User", "bob"}, ReasonUserDisabled, SourceProxyUser, "X-Forwarded-User", false},
		{"malformed login", []string{"X-Forwarded-User", "a b"}, ReasonMalformed, SourceProxyUser, "X-Forwarded-User", true},
		{"repeated user header", []string{"X-Forwarded-User", "alice", "X-Forwarded-User", "bob"}, ReasonMalformed, SourceProxyUser, "X-Forwarded-User", true},
		{"malformed audience", []string{"X-Forwarded-Audience", "acme, bad name"}, ReasonMalformed, SourceProxyAudience, "X-Forwarded-Audience", true},
		{"user reference as audience", []string{"X-Forwarded-Audience", "user:3"}, ReasonMalformed, SourceProxyAudience, "X-Forwarded-Audience", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Chain{proxy(t)}.Resolve(request("10.1.2.3:4000", c.req...))
			var ae *AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("got %v, want an AuthError", err)
			}
			if ae.Reason != c.reason || ae.Source != c.source || ae.Header != c.header || (ae.Detail != "") != c.hasInfo {
				t.Fatalf("got %+v, want reason %s source %s header %s detail=%v", ae, c.reason, c.source, c.header, c.hasInfo)
			}
			for _, v := range c.req {
				if v != c.header && len(v) > 3 && (strings.Contains(ae.Detail, v) || strings.Contains(ae.Error(), v)) {
					t.Errorf("error %q / detail %q repeats the header value %q", ae.Error(), ae.Detail, v)
				}
			}
		})
	}
	// A bearer failure keeps the zero source: RFC 6750 applies to it alone.
	_, err := Chain{BearerToken{Lookup: &fakeLookup{}}}.Resolve(request("10.1.2.3:4000", "Authorization", "Bearer "+mustToken(t)))
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Source != SourceAuthorization || ae.Header != "" {
		t.Fatalf("bearer failure = %+v, want source Authorization", ae)
	}
}
