package principal

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/agentauthz/agentauthz/internal/token"
)

// TokenLookup resolves a verified agent token (parsed once, by
// BearerToken) into a token principal; failures are *AuthError values,
// anything else is an infrastructure error (the request still fails closed).
type TokenLookup interface {
	Lookup(ctx context.Context, t token.Verified) (*Principal, error)
}

// BearerToken claims requests carrying "Authorization: Bearer <prefix>_..."
// and resolves them through Lookup; every other credential passes through.
type BearerToken struct {
	// Prefix is the configured token prefix (token.DefaultPrefix if empty).
	Prefix string
	// Lookup resolves well-formed tokens (normally the credential cache).
	Lookup TokenLookup
	// Throttle, if set, counts failed attempts per client and refuses every
	// claimed attempt (*ThrottledError) from a client that failed too often,
	// before any parsing or lookup.
	Throttle *FailureThrottle
}

// Resolve implements Resolver.
func (b BearerToken) Resolve(r *http.Request) (*Principal, bool, error) {
	prefix := b.Prefix
	if prefix == "" {
		prefix = token.DefaultPrefix
	}
	raw, claimed, err := bearerCredential(r.Header.Values("Authorization"), prefix)
	if !claimed {
		return nil, false, nil
	}
	if b.Throttle == nil {
		return b.resolve(r, prefix, raw, err)
	}
	client := b.Throttle.Client(r)
	if wait, ok := b.Throttle.Allow(client); !ok {
		// A throttled client may still use a credential this process
		// already holds (no store query, nothing to guess): one guesser
		// behind a shared address must not lock out everyone else there.
		if p, ok := b.cached(prefix, raw, err); ok {
			return p, true, nil
		}
		b.Throttle.Refused()
		return nil, true, &ThrottledError{RetryAfter: wait}
	}
	p, claimed, err := b.resolve(r, prefix, raw, err)
	if countsAsFailure(err) {
		b.Throttle.Fail(client)
	}
	return p, claimed, err
}

// CachedLookup is what a TokenLookup may add: resolution from what it
// already holds, without I/O (credential.Resolver implements it).
type CachedLookup interface {
	Cached(t token.Verified) (*Principal, bool)
}

// cached resolves a claimed credential from the lookup's cache only.
func (b BearerToken) cached(prefix, raw string, credErr error) (*Principal, bool) {
	c, ok := b.Lookup.(CachedLookup)
	if !ok || credErr != nil {
		return nil, false
	}
	verified, err := token.Verify(prefix, raw)
	if err != nil {
		return nil, false
	}
	return c.Cached(verified)
}

// VerifyFailure is the *AuthError for a token that token.Verify refused.
func VerifyFailure(err error) *AuthError {
	if errors.Is(err, token.ErrChecksum) {
		return &AuthError{Reason: ReasonChecksum}
	}
	return &AuthError{Reason: ReasonMalformed}
}

// resolve checks and looks up a claimed credential; credErr is
// bearerCredential's verdict on the header.
func (b BearerToken) resolve(r *http.Request, prefix, raw string, credErr error) (*Principal, bool, error) {
	if credErr != nil {
		return nil, true, credErr
	}
	verified, err := token.Verify(prefix, raw)
	if err != nil {
		return nil, true, VerifyFailure(err)
	}
	if b.Lookup == nil {
		return nil, true, errors.New("principal: bearer token resolver has no lookup")
	}
	p, err := b.Lookup.Lookup(r.Context(), verified)
	if err != nil {
		return nil, true, err
	}
	if p == nil {
		return nil, true, &AuthError{Reason: ReasonUnknown}
	}
	return p, true, nil
}

// bearerCredential finds our credential among the Authorization headers.
// It claims a header whose scheme is Bearer (any case) when the value is
// empty or any of its words starts with prefix+"_"; a claimed header must
// hold exactly one credential, and a claimed request exactly one header.
func bearerCredential(headers []string, prefix string) (raw string, claimed bool, err error) {
	malformed := &AuthError{Reason: ReasonMalformed}
	for _, h := range headers {
		words := strings.Fields(h)
		if len(words) == 0 || !strings.EqualFold(words[0], "bearer") {
			continue
		}
		words = words[1:]
		ours := len(words) == 0
		for _, w := range words {
			ours = ours || token.Claims(prefix, w)
		}
		if !ours {
			continue
		}
		if claimed || len(words) != 1 {
			return "", true, malformed
		}
		raw, claimed = words[0], true
	}
	if claimed && len(headers) > 1 {
		// Our token beside another Authorization header is ambiguous.
		return "", true, malformed
	}
	return raw, claimed, nil
}
