package principal

import (
	"errors"
	"net/http"
	"time"
)

// ErrNoPrincipal means no resolver in the chain claimed the request.
var ErrNoPrincipal = errors.New("principal: no credentials")

// Reasons an AuthError may carry; the HTTP layer maps them to messages.
const (
	// ReasonMalformed is a credential or proxy header that is not well-formed.
	ReasonMalformed = "malformed"
	// ReasonChecksum is a well-formed token whose checksum does not match.
	ReasonChecksum = "checksum"
	// ReasonUnknown is a token or proxy login that does not exist.
	ReasonUnknown = "unknown"
	// ReasonRevoked is a revoked token.
	ReasonRevoked = "revoked"
	// ReasonExpired is a token past its expires_at.
	ReasonExpired = "expired"
	// ReasonAgentInactive is a token of an inactive agent (403, not 401).
	ReasonAgentInactive = "agent_inactive"
	// ReasonOwnerMissing is a token whose agent's owner row is gone.
	ReasonOwnerMissing = "owner_missing"
	// ReasonOwnerDisabled is a token whose agent's owner is disabled.
	ReasonOwnerDisabled = "owner_disabled"
	// ReasonUserDisabled is a disabled user named by a trusted proxy.
	ReasonUserDisabled = "user_disabled"
	// ReasonUnrecognized: the request carried credentials no resolver
	// understood (e.g. a token minted under another prefix).
	ReasonUnrecognized = "unrecognized_credentials"
)

// Source says which credential of a request failed.
type Source string

// The sources of a failed credential (AuthError.Source).
const (
	// SourceAuthorization is the Authorization header: a bearer token, or
	// credentials no resolver understood. It is the zero value, and the only
	// source that RFC 6750's error="invalid_token" describes.
	SourceAuthorization Source = ""
	// SourceProxyUser is a trusted proxy's user header.
	SourceProxyUser Source = "proxy_user"
	// SourceProxyAudience is a trusted proxy's audience header.
	SourceProxyAudience Source = "proxy_audience"
)

// AuthError is a claimed credential that failed; it carries an HTTP-agnostic
// reason and never the credential itself.
type AuthError struct {
	// Reason is one of the Reason* constants.
	Reason string
	// Forbidden is true when the credential is genuine but may not act
	// (an inactive agent: 403); otherwise the failure is a 401.
	Forbidden bool
	// Source is the credential that failed (zero: the Authorization header).
	Source Source
	// Header names the proxy header at fault (SourceProxyUser and
	// SourceProxyAudience only), as configured, e.g. "X-Forwarded-User".
	Header string
	// Detail says what is wrong with a malformed proxy header without
	// repeating its value (e.g. "not an audience"); may be empty.
	Detail string
}

// Error returns "principal: credential rejected: <reason>", naming the proxy
// header when one failed.
func (e *AuthError) Error() string {
	if e.Header != "" {
		return "principal: proxy header " + e.Header + " rejected: " + e.Reason
	}
	return "principal: credential rejected: " + e.Reason
}

// ThrottledError refuses a bearer authentication attempt from a client that
// has failed too often (see FailureThrottle); the store was not asked.
type ThrottledError struct {
	// RetryAfter is how long until the client may try again.
	RetryAfter time.Duration
}

// Error returns "principal: too many failed authentications; retry after <d>".
func (e *ThrottledError) Error() string {
	return "principal: too many failed authentications; retry after " + e.RetryAfter.String()
}

// Resolver turns a request into a principal. claimed=false means "not mine,
// try the next resolver"; claimed=true with an error means the request must
// fail (fail closed, never fall back).
type Resolver interface {
	Resolve(r *http.Request) (p *Principal, claimed bool, err error)
}

// Chain tries resolvers in order and stops at the first that claims.
type Chain []Resolver

// Resolve returns the first claimed principal, the claiming resolver's
// error, or ErrNoPrincipal when no resolver claims the request.
//
// A resolver that returns an error without claiming, or claims without a
// principal, is treated as a failure rather than skipped: an ambiguous
// answer about credentials must never let a later, weaker resolver win.
func (c Chain) Resolve(r *http.Request) (*Principal, error) {
	for _, res := range c {
		p, claimed, err := res.Resolve(r)
		if err != nil {
			return nil, err
		}
		if !claimed {
			continue
		}
		if p == nil {
			return nil, &AuthError{Reason: ReasonUnknown}
		}
		return p, nil
	}
	return nil, ErrNoPrincipal
}

// AllowAnonymous is the resolver that claims requests without credentials
// as the anonymous principal (audience:public); leave it out of the chain to
// disable anonymous access, and keep it last.
type AllowAnonymous struct{}

// Resolve claims the request as Anonymous() unless it carries an
// Authorization header that no earlier resolver understood: a caller that
// presents credentials is never silently downgraded to the public audience
// (a token minted under another prefix would otherwise act as anonymous).
func (AllowAnonymous) Resolve(r *http.Request) (*Principal, bool, error) {
	if len(r.Header.Values("Authorization")) > 0 {
		return nil, true, &AuthError{Reason: ReasonUnrecognized}
	}
	return Anonymous(), true, nil
}
