package principal

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/token"
)

// fakeLookup resolves the one token it knows and counts its calls.
type fakeLookup struct {
	known string
	err   error
	calls int
}

func (f *fakeLookup) Lookup(_ context.Context, t token.Verified) (*Principal, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	if t.Hash() != token.Hash(f.known) {
		return nil, &AuthError{Reason: ReasonUnknown}
	}
	return ForToken(&model.Token{ID: 12, AgentID: 7}, &model.Agent{ID: 7, Slug: "bot"}, &model.User{ID: 3, Status: model.StatusActive}), nil
}

func mustToken(t *testing.T) string {
	t.Helper()
	raw, err := token.Generate(token.DefaultPrefix, "bot")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func badChecksum(raw string) string {
	last := raw[len(raw)-1]
	if last == '0' {
		return raw[:len(raw)-1] + "1"
	}
	return raw[:len(raw)-1] + "0"
}

var users = map[string]*model.User{
	"alice": {ID: 3, Login: "alice", Status: model.StatusActive},
	"bob":   {ID: 4, Login: "bob", Status: model.StatusDisabled},
}

func lookupUser(_ context.Context, login string) (*model.User, error) {
	if login == "down" {
		return nil, model.ErrUnavailable
	}
	if u, ok := users[login]; ok {
		return u, nil
	}
	return nil, model.ErrNotFound
}

func proxy(t *testing.T, fixed ...string) *TrustedProxy {
	t.Helper()
	nets, err := ParseNetworks([]string{"10.0.0.0/8", "fd00::/8", "192.168.1.5"})
	if err != nil {
		t.Fatal(err)
	}
	p := &TrustedProxy{
		Networks:       nets,
		UserHeader:     "X-Forwarded-User",
		AudienceHeader: "X-Forwarded-Audience",
		FixedAudiences: fixed,
		LookupUser:     lookupUser,
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

type want struct {
	kind      Kind // "" means no principal
	id        string
	audiences []string
	reason    string // AuthError reason
	noCreds   bool   // ErrNoPrincipal
	otherErr  error  // a non-AuthError failure, matched with errors.Is
	forbidden bool
}

func request(remote string, headers ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/whoami", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func check(t *testing.T, p *Principal, err error, w want) {
	t.Helper()
	var ae *AuthError
	switch {
	case w.noCreds:
		if !errors.Is(err, ErrNoPrincipal) || p != nil {
			t.Fatalf("got (%+v, %v), want ErrNoPrincipal", p, err)
		}
	case w.reason != "":
		if !errors.As(err, &ae) || ae.Reason != w.reason || ae.Forbidden != w.forbidden || p != nil {
			t.Fatalf("got (%+v, %v), want AuthError %q forbidden=%v", p, err, w.reason, w.forbidden)
		}
	case w.otherErr != nil:
		if !errors.Is(err, w.otherErr) || errors.As(err, &ae) || p != nil {
			t.Fatalf("got (%+v, %v), want %v", p, err, w.otherErr)
		}
	default:
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		if p.Kind != w.kind || p.ID != w.id || strings.Join(p.Audiences, ",") != strings.Join(w.audiences, ",") {
			t.Fatalf("got kind=%s id=%s audiences=%v, want kind=%s id=%s audiences=%v", p.Kind, p.ID, p.Audiences, w.kind, w.id, w.audiences)
		}
	}
}

func TestChain(t *testing.T) {
	raw := mustToken(t)
	tests := []struct {
		name      string
		anonymous bool
		fixed     []string
		lookupErr error
		req       *http.Request
		want      want
	}{
		// Bearer token.
		{"our bearer token resolves to its token principal", true, nil, nil,
			request("203.0.113.9:4000", "Authorization", "Bearer "+raw), want{kind: KindToken, id: "token:12"}},
		{"bearer scheme is case-insensitive", true, nil, nil,
			request("203.0.113.9:4000", "Authorization", "bEaReR "+raw), want{kind: KindToken, id: "token:12"}},
		{"extra whitespace around the credential is tolerated", true, nil, nil,
			request("203.0.113.9:4000", "Authorization", "Bearer \t"+raw+" "), want{kind: KindToken, id: "token:12"}},
		{"bearer token wins over trusted proxy headers", true, nil, nil,
			request("10.1.2.3:4000", "Authorization", "Bearer "+raw, "X-Forwarded-User", "alice"), want{kind: KindToken, id: "token:12"}},
		{"bearer with our prefix but bad checksum fails closed and never falls back to anonymous", true, nil, nil,
			request("203.0.113.9:4000", "Authorization", "Bearer "+badChecksum(raw)), want{reason: ReasonChecksum}},
		{"bad checksum from a trusted proxy never falls back to the proxy user", true, nil, nil,
			request("10.1.2.3:4000", "Authorization", "Bearer "+badChecksum(raw), "X-Forwarded-User", "alice"), want{reason: ReasonChecksum}},
		{"bearer with our prefix but garbage is malformed", true, nil, nil,
			request("203.0.113.9:4000", "Authorization", "Bearer datamachine_garbage"), want{reason: ReasonMalformed}},
		{"bearer with empty value is malformed", true, nil, nil,
			request("203.0.113.9:4000", "Authorization", "Bearer "), want{reason: ReasonMalformed}},
		{"bare bearer scheme is malformed", true, nil, nil,
			request("203.0.113.9:4000", "Authorization", "Bearer"), want{reason: ReasonMalformed}},
		{"two credentials after our prefix are malformed", true, nil, nil,
			request("203.0.113.9:4000", "Authorization", "Bearer "+raw+" extra"), want{reason: ReasonMalformed}},
		{"our token hidden after another word is malformed", true, nil, nil,
			request("203.0.113.9:4000", "Authorization", "Bearer other "+raw), want{reason: ReasonMalformed}},
		{"our token beside a second Authorization header is malformed", true, nil, nil,
			request("203.0.113.9:4000", "Authorization", "Basic YTpi", "Authorization", "Bearer "+raw), want{reason: ReasonMalformed}},
		{"unknown token fails closed", true, nil, nil,
			request("203.0.113.9:4000", "Authorization", "Bearer "+mustToken(t)), want{reason: ReasonUnknown}},
		{"inactive agent is forbidden", true, nil, &AuthError{Reason: ReasonAgentInactive, Forbidden: true},
			request("203.0.113.9:4000", "Authorization", "Bearer "+raw), want{reason: ReasonAgentInactive, forbidden: true}},
		{"store failure during lookup fails closed", true, nil, model.ErrUnavailable,
			request("203.0.113.9:4000", "Authorization", "Bearer "+raw), want{otherErr: model.ErrUnavailable}},
		{"basic auth nobody understands is refused, never anonymous", true, nil, nil,
			request("203.0.113.9:4000", "Authorization", "Basic YWxpY2U6c2VjcmV0"), want{reason: ReasonUnrecognized}},
		{"bearer with another issuer's token is refused, never anonymous", true, nil, nil,
			request("203.0.113.9:4000", "Authorization", "Bearer ghp_abcdef"), want{reason: ReasonUnrecognized}},
		{"bearer with a look-alike prefix is refused, never anonymous", true, nil, nil,
			request("203.0.113.9:4000", "Authorization", "Bearer datamachinex_"+raw[12:]), want{reason: ReasonUnrecognized}},
		{"basic auth passes through to the trusted proxy", true, nil, nil,
			request("10.1.2.3:4000", "Authorization", "Basic YTpi", "X-Forwarded-User", "alice"), want{kind: KindUser, id: "user:3"}},

		// Trusted proxy.
		{"proxy user from a trusted address", true, nil, nil,
			request("10.1.2.3:4000", "X-Forwarded-User", "alice"), want{kind: KindUser, id: "user:3"}},
		{"proxy user with audiences attached", true, nil, nil,
			request("10.1.2.3:4000", "X-Forwarded-User", "alice", "X-Forwarded-Audience", "acme"), want{kind: KindUser, id: "user:3", audiences: []string{"audience:acme"}}},
		{"headers from an untrusted address are ignored", true, nil, nil,
			request("203.0.113.9:4000", "X-Forwarded-User", "alice", "X-Forwarded-Audience", "acme"), want{kind: KindAnonymous, id: PublicAudience}},
		{"headers from an untrusted address are ignored even when malformed", true, nil, nil,
			request("203.0.113.9:4000", "X-Forwarded-User", "no such user", "X-Forwarded-Audience", "bad name!"), want{kind: KindAnonymous, id: PublicAudience}},
		{"X-Forwarded-For never makes an address trusted", true, nil, nil,
			request("203.0.113.9:4000", "X-Forwarded-For", "10.1.2.3", "X-Forwarded-User", "alice"), want{kind: KindAnonymous, id: PublicAudience}},
		{"untrusted request without anonymous access has no principal", false, nil, nil,
			request("203.0.113.9:4000", "X-Forwarded-User", "alice"), want{noCreds: true}},
		{"unknown proxy user fails closed", true, nil, nil,
			request("10.1.2.3:4000", "X-Forwarded-User", "mallory"), want{reason: ReasonUnknown}},
		{"disabled proxy user fails closed", true, nil, nil,
			request("10.1.2.3:4000", "X-Forwarded-User", "bob"), want{reason: ReasonUserDisabled}},
		{"malformed proxy user fails closed", true, nil, nil,
			request("10.1.2.3:4000", "X-Forwarded-User", "a b"), want{reason: ReasonMalformed}},
		{"two proxy user headers fail closed", true, nil, nil,
			request("10.1.2.3:4000", "X-Forwarded-User", "alice", "X-Forwarded-User", "bob"), want{reason: ReasonMalformed}},
		{"store failure looking up the proxy user fails closed", true, nil, nil,
			request("10.1.2.3:4000", "X-Forwarded-User", "down"), want{otherErr: model.ErrUnavailable}},
		{"comma-separated audiences with spaces", true, nil, nil,
			request("10.1.2.3:4000", "X-Forwarded-Audience", " acme , audience:beta,,gamma "), want{kind: KindAudience, id: "audience:acme", audiences: []string{"audience:acme", "audience:beta", "audience:gamma"}}},
		{"audiences across repeated headers are deduplicated", true, nil, nil,
			request("10.1.2.3:4000", "X-Forwarded-Audience", "acme, beta", "X-Forwarded-Audience", "audience:acme"), want{kind: KindAudience, id: "audience:acme", audiences: []string{"audience:acme", "audience:beta"}}},
		{"malformed audience from a trusted proxy fails closed", true, nil, nil,
			request("10.1.2.3:4000", "X-Forwarded-Audience", "acme, bad name"), want{reason: ReasonMalformed}},
		{"user reference in the audience header fails closed", true, nil, nil,
			request("10.1.2.3:4000", "X-Forwarded-Audience", "user:3"), want{reason: ReasonMalformed}},
		{"fixed audience applies to every trusted request", true, []string{"private-site"}, nil,
			request("10.1.2.3:4000"), want{kind: KindAudience, id: "audience:private-site", audiences: []string{"audience:private-site"}}},
		{"fixed audience follows header audiences", true, []string{"private-site"}, nil,
			request("10.1.2.3:4000", "X-Forwarded-Audience", "acme,private-site"), want{kind: KindAudience, id: "audience:acme", audiences: []string{"audience:acme", "audience:private-site"}}},
		{"fixed audience is attached to the proxy user", true, []string{"audience:private-site"}, nil,
			request("10.1.2.3:4000", "X-Forwarded-User", "alice"), want{kind: KindUser, id: "user:3", audiences: []string{"audience:private-site"}}},
		{"fixed audience is not given to untrusted requests", true, []string{"private-site"}, nil,
			request("203.0.113.9:4000"), want{kind: KindAnonymous, id: PublicAudience}},
		{"trusted request without headers passes through", true, nil, nil,
			request("10.1.2.3:4000"), want{kind: KindAnonymous, id: PublicAudience}},
		{"empty user header passes through", true, nil, nil,
			request("10.1.2.3:4000", "X-Forwarded-User", " "), want{kind: KindAnonymous, id: PublicAudience}},
		{"trusted IPv6 peer", true, nil, nil,
			request("[fd00::1]:4000", "X-Forwarded-User", "alice"), want{kind: KindUser, id: "user:3"}},
		{"trusted IPv6 peer with a zone", true, nil, nil,
			request("[fd00::1%eth0]:4000", "X-Forwarded-User", "alice"), want{kind: KindUser, id: "user:3"}},
		{"untrusted IPv6 peer is ignored", true, nil, nil,
			request("[2001:db8::1]:4000", "X-Forwarded-User", "alice"), want{kind: KindAnonymous, id: PublicAudience}},
		{"IPv4-mapped IPv6 peer matches an IPv4 network", true, nil, nil,
			request("[::ffff:10.1.2.3]:4000", "X-Forwarded-User", "alice"), want{kind: KindUser, id: "user:3"}},
		{"single trusted IP", true, nil, nil,
			request("192.168.1.5:4000", "X-Forwarded-User", "alice"), want{kind: KindUser, id: "user:3"}},
		{"neighbour of a single trusted IP is ignored", true, nil, nil,
			request("192.168.1.6:4000", "X-Forwarded-User", "alice"), want{kind: KindAnonymous, id: PublicAudience}},
		{"unparseable peer address is untrusted", true, nil, nil,
			request("@", "X-Forwarded-User", "alice"), want{kind: KindAnonymous, id: PublicAudience}},

		// Nothing at all.
		{"no credentials with anonymous access", true, nil, nil,
			request("203.0.113.9:4000"), want{kind: KindAnonymous, id: PublicAudience}},
		{"no credentials without anonymous access", false, nil, nil,
			request("203.0.113.9:4000"), want{noCreds: true}},
		{"basic auth without anonymous access has no principal", false, nil, nil,
			request("203.0.113.9:4000", "Authorization", "Basic YTpi"), want{noCreds: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := &fakeLookup{known: raw, err: tt.lookupErr}
			chain := Chain{BearerToken{Lookup: lookup}, proxy(t, tt.fixed...)}
			if tt.anonymous {
				chain = append(chain, AllowAnonymous{})
			}
			p, err := chain.Resolve(tt.req)
			check(t, p, err, tt.want)
			if err != nil && strings.Contains(err.Error(), raw[len(raw)-64:]) {
				t.Fatalf("error %q leaks the token", err)
			}
		})
	}
}

func TestBearerRejectsGarbageBeforeLookup(t *testing.T) {
	lookup := &fakeLookup{}
	b := BearerToken{Lookup: lookup}
	raw := mustToken(t)
	for _, h := range []string{"Bearer datamachine_x", "Bearer " + badChecksum(raw), "Bearer "} {
		if _, claimed, err := b.Resolve(request("203.0.113.9:1", "Authorization", h)); !claimed || err == nil {
			t.Fatalf("%q: claimed=%v err=%v, want claimed failure", h, claimed, err)
		}
	}
	if lookup.calls != 0 {
		t.Fatalf("lookup called %d times for malformed tokens", lookup.calls)
	}
}

func TestBearerCustomPrefix(t *testing.T) {
	raw, err := token.Generate("acme", "bot")
	if err != nil {
		t.Fatal(err)
	}
	b := BearerToken{Prefix: "acme", Lookup: &fakeLookup{known: raw}}
	if p, claimed, err := b.Resolve(request("203.0.113.9:1", "Authorization", "Bearer "+raw)); !claimed || err != nil || p.ID != "token:12" {
		t.Fatalf("custom prefix: (%v, %v, %v)", p, claimed, err)
	}
	dm := mustToken(t)
	if _, claimed, err := b.Resolve(request("203.0.113.9:1", "Authorization", "Bearer "+dm)); claimed || err != nil {
		t.Fatalf("default-prefix token under a custom prefix: claimed=%v err=%v, want pass-through", claimed, err)
	}
}

// stub is a resolver with a fixed answer.
type stub struct {
	p       *Principal
	claimed bool
	err     error
}

func (s stub) Resolve(*http.Request) (*Principal, bool, error) { return s.p, s.claimed, s.err }

func TestChainNeverFallsBack(t *testing.T) {
	r := request("203.0.113.9:1")
	boom := errors.New("boom")
	tests := []struct {
		name  string
		chain Chain
		want  want
	}{
		{"first claim wins", Chain{stub{p: Operator(), claimed: true}, AllowAnonymous{}}, want{kind: KindOperator, id: OperatorID}},
		{"claimed failure stops the chain", Chain{stub{claimed: true, err: &AuthError{Reason: ReasonRevoked}}, AllowAnonymous{}}, want{reason: ReasonRevoked}},
		{"unclaimed error still stops the chain", Chain{stub{err: boom}, AllowAnonymous{}}, want{otherErr: boom}},
		{"claim without a principal fails closed", Chain{stub{claimed: true}, AllowAnonymous{}}, want{reason: ReasonUnknown}},
		{"unclaimed passes to the next", Chain{stub{}, AllowAnonymous{}}, want{kind: KindAnonymous, id: PublicAudience}},
		{"empty chain has no principal", Chain{}, want{noCreds: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.chain.Resolve(r)
			check(t, p, err, tt.want)
		})
	}
}

func TestParseNetworks(t *testing.T) {
	got, err := ParseNetworks([]string{"10.0.0.0/8", " 192.168.1.5 ", "fd00::/8", "::1", "10.1.2.3/16", "::ffff:172.16.0.0/108"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.168.1.5/32", "fd00::/8", "::1/128", "10.1.0.0/16", "172.16.0.0/12"}
	for i, p := range got {
		if p.String() != want[i] {
			t.Fatalf("network %d = %s, want %s", i, p, want[i])
		}
	}
	for _, bad := range []string{"", "10.0.0.0/33", "example.com", "fe80::1%eth0", "10.0.0.1:80"} {
		if _, err := ParseNetworks([]string{bad}); err == nil {
			t.Fatalf("ParseNetworks(%q) accepted", bad)
		}
	}
	if got, err := ParseNetworks(nil); err != nil || len(got) != 0 {
		t.Fatalf("ParseNetworks(nil) = %v, %v", got, err)
	}
}

func TestTrustedProxyValidate(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name string
		p    TrustedProxy
		ok   bool
	}{
		{"complete", TrustedProxy{Networks: nets, UserHeader: "X-User", LookupUser: lookupUser, FixedAudiences: []string{"acme"}}, true},
		{"no networks", TrustedProxy{UserHeader: "X-User", LookupUser: lookupUser}, false},
		{"user header without lookup", TrustedProxy{Networks: nets, UserHeader: "X-User"}, false},
		{"malformed fixed audience", TrustedProxy{Networks: nets, FixedAudiences: []string{"bad name"}}, false},
		{"user as fixed audience", TrustedProxy{Networks: nets, FixedAudiences: []string{"user:3"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestContext(t *testing.T) {
	if FromContext(context.Background()) != nil {
		t.Fatal("empty context has a principal")
	}
	p := Operator()
	if FromContext(NewContext(context.Background(), p)) != p {
		t.Fatal("principal lost in context")
	}
}
