package principal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/agentauthz/agentauthz/internal/model"
)

// TrustedProxy takes the caller's identity from headers set by a reverse
// proxy, but only when the TCP peer (r.RemoteAddr, never X-Forwarded-For)
// is inside Networks; from anywhere else the headers are ignored.
type TrustedProxy struct {
	// Networks are the proxy addresses to trust (see ParseNetworks).
	Networks []netip.Prefix
	// UserHeader carries the user's login (e.g. "X-Forwarded-User");
	// empty disables it.
	UserHeader string
	// AudienceHeader carries comma-separated audience names or
	// "audience:<name>" refs (e.g. "X-Forwarded-Audience"); empty disables it.
	AudienceHeader string
	// FixedAudiences are given to every request from a trusted network
	// (a proxied private site); bare names mean "audience:<name>".
	FixedAudiences []string
	// LookupUser finds a user by login; it returns an error matching
	// model.ErrNotFound for an unknown login.
	LookupUser func(ctx context.Context, login string) (*model.User, error)
}

// Validate reports configuration mistakes, so they surface at startup
// rather than as failed requests.
func (t *TrustedProxy) Validate() error {
	if len(t.Networks) == 0 {
		return errors.New("principal: trusted proxy has no networks")
	}
	if t.UserHeader != "" && t.LookupUser == nil {
		return errors.New("principal: trusted proxy has a user header but no user lookup")
	}
	for _, a := range t.FixedAudiences {
		if _, err := audienceRef(a); err != nil {
			return fmt.Errorf("principal: fixed audience %q: %w", a, err)
		}
	}
	return nil
}

// Resolve implements Resolver.
func (t *TrustedProxy) Resolve(r *http.Request) (*Principal, bool, error) {
	if !t.Trusts(r.RemoteAddr) {
		return nil, false, nil
	}
	audiences, err := t.audiences(r.Header)
	if err != nil {
		return nil, true, err
	}
	login, hasUser, err := t.login(r.Header)
	if err != nil {
		return nil, true, err
	}
	if hasUser {
		u, err := t.user(r.Context(), login)
		if err != nil {
			return nil, true, err
		}
		return ForUser(u, audiences), true, nil
	}
	if len(audiences) == 0 {
		return nil, false, nil
	}
	return ForAudiences(audiences), true, nil
}

// Trusts reports whether remoteAddr ("ip:port", "[ip6]:port" or a bare ip)
// lies inside one of the trusted networks.
func (t *TrustedProxy) Trusts(remoteAddr string) bool {
	addr, ok := peerAddr(remoteAddr)
	if !ok {
		return false
	}
	for _, n := range t.Networks {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}

// peerAddr extracts the peer IP, unmapping IPv4-in-IPv6 and dropping any zone
// so that netip.Prefix.Contains can match it.
func peerAddr(remoteAddr string) (netip.Addr, bool) {
	var addr netip.Addr
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		addr = ap.Addr()
	} else if a, err := netip.ParseAddr(remoteAddr); err == nil {
		addr = a
	} else {
		return netip.Addr{}, false
	}
	return addr.WithZone("").Unmap(), true
}

// login returns the user header's value; several values are malformed.
func (t *TrustedProxy) login(h http.Header) (string, bool, error) {
	if t.UserHeader == "" {
		return "", false, nil
	}
	values := h.Values(t.UserHeader)
	switch {
	case len(values) == 0:
		return "", false, nil
	case len(values) > 1:
		return "", true, t.userError(ReasonMalformed, "it is sent more than once")
	}
	login := strings.TrimSpace(values[0])
	if login == "" {
		return "", false, nil
	}
	if err := validName(login); err != nil {
		return "", true, t.userError(ReasonMalformed, refDetail(err))
	}
	return login, true, nil
}

// userError is a failure of the user header; it never carries the login.
func (t *TrustedProxy) userError(reason, detail string) *AuthError {
	return &AuthError{Reason: reason, Source: SourceProxyUser, Header: t.UserHeader, Detail: detail}
}

// refDetail is a RefError's reason (which never repeats the input).
func refDetail(err error) string {
	var re *RefError
	if errors.As(err, &re) {
		return re.Reason
	}
	return "not a valid name"
}

// user looks up an active user by login.
func (t *TrustedProxy) user(ctx context.Context, login string) (*model.User, error) {
	if t.LookupUser == nil {
		return nil, errors.New("principal: trusted proxy has no user lookup")
	}
	u, err := t.LookupUser(ctx, login)
	switch {
	case errors.Is(err, model.ErrNotFound) || err == nil && u == nil:
		return nil, t.userError(ReasonUnknown, "")
	case err != nil:
		return nil, err
	case u.Status != model.StatusActive:
		return nil, t.userError(ReasonUserDisabled, "")
	}
	return u, nil
}

// audiences returns the header's audiences, then the fixed ones, canonical
// and without duplicates.
func (t *TrustedProxy) audiences(h http.Header) ([]string, error) {
	var out []string
	header := t.AudienceHeader
	add := func(s string) error {
		ref, err := audienceRef(s)
		if err != nil {
			return &AuthError{Reason: ReasonMalformed, Source: SourceProxyAudience, Header: header, Detail: refDetail(err)}
		}
		id := ref.String()
		for _, seen := range out {
			if seen == id {
				return nil
			}
		}
		out = append(out, id)
		return nil
	}
	if t.AudienceHeader != "" {
		for _, v := range h.Values(t.AudienceHeader) {
			for item := range strings.SplitSeq(v, ",") {
				// Empty list elements ("a,,b", a trailing comma) are
				// allowed by HTTP list syntax and carry nothing.
				if item = strings.TrimSpace(item); item == "" {
					continue
				}
				if err := add(item); err != nil {
					return nil, err
				}
			}
		}
	}
	// Validate rejects bad fixed audiences at startup; one that slipped
	// through is still refused, but not blamed on the header.
	header = ""
	for _, a := range t.FixedAudiences {
		if err := add(a); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// audienceRef parses an audience name or "audience:<name>"; a user
// reference is not an audience.
func audienceRef(s string) (Ref, error) {
	ref, err := ParseRef(s)
	if err != nil {
		return Ref{}, err
	}
	if ref.Type != TypeAudience {
		return Ref{}, &RefError{"not an audience"}
	}
	return ref, nil
}

// ParseNetworks parses CIDRs ("10.0.0.0/8", "fd00::/8") and bare IPs (a
// single-address network) into prefixes for TrustedProxy.Networks.
func ParseNetworks(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		var (
			p   netip.Prefix
			err error
		)
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(s)
			if err == nil && a.Zone() != "" {
				err = errors.New("zones are not allowed")
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			return nil, fmt.Errorf("principal: trusted network %q: %w", s, err)
		}
		out = append(out, unmapPrefix(p.Masked()))
	}
	return out, nil
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) into
// its IPv4 form, because peer addresses are unmapped before matching.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}
