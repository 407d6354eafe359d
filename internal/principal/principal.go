// Package principal says who is asking: it defines the Principal type, the
// Resolver interface, the Chain that tries resolvers in order, and the
// built-in resolvers (agent bearer token, trusted proxy, anonymous), and the
// throttle that refuses bearer attempts from a client that failed too often.
//
// It must never decide permissions: no roles, capabilities or grants are
// interpreted here; that is the policy engine's job. It must never fall back
// to a weaker identity once a resolver has claimed a request, and never put
// a raw token into an error.
package principal

import (
	"context"
	"strconv"

	"github.com/agentauthz/agentauthz/internal/model"
)

// Kind says what sort of caller a Principal is.
type Kind string

// The kinds of principal, as they appear in the policy input.
const (
	// KindToken is an agent bearer token acting for its owner.
	KindToken Kind = "token"
	// KindUser is a user vouched for by a trusted proxy.
	KindUser Kind = "user"
	// KindAudience is an audience (or several) vouched for by a trusted proxy.
	KindAudience Kind = "audience"
	// KindAnonymous is a caller without credentials (audience:public).
	KindAnonymous Kind = "anonymous"
	// KindOperator is the store operator (the CLI without --as).
	KindOperator Kind = "operator"
)

// PublicAudience is the identity of every caller, and the whole identity of
// an anonymous one.
const PublicAudience = "audience:public"

// OperatorID is the ID of the store operator (the CLI without --as).
const OperatorID = "operator"

// Principal is the resolved caller of one request; it holds facts only and
// never a raw token (Token carries the stored hash at most).
type Principal struct {
	Kind Kind
	// ID is "token:12", "user:3", "audience:acme", "audience:public" or
	// "operator".
	ID string
	// User is the acting user: the owner for a token, the user for a user.
	User *model.User
	// Audiences are the "audience:<name>" identities a proxy attached.
	Audiences []string
	// Token is the token's stored metadata (KindToken only).
	Token *model.Token
	// Agent is the token's agent (KindToken only).
	Agent *model.Agent
}

// Anonymous returns the principal of a caller without credentials.
func Anonymous() *Principal {
	return &Principal{Kind: KindAnonymous, ID: PublicAudience}
}

// Operator returns the store operator, the CLI acting without --as.
func Operator() *Principal {
	return &Principal{Kind: KindOperator, ID: OperatorID}
}

// ForUser returns the principal of user u with the audiences a proxy
// attached (canonical "audience:<name>" strings).
func ForUser(u *model.User, audiences []string) *Principal {
	return &Principal{Kind: KindUser, ID: UserID(u.ID), User: u, Audiences: audiences}
}

// ForAudiences returns an audience principal whose ID is the first of the
// (canonical, non-empty) audiences; it returns nil for an empty list.
func ForAudiences(audiences []string) *Principal {
	if len(audiences) == 0 {
		return nil
	}
	return &Principal{Kind: KindAudience, ID: audiences[0], Audiences: audiences}
}

// ForToken returns the principal of an agent token acting for owner (which
// may be nil when the owner row is missing; resolvers reject that first).
func ForToken(t *model.Token, a *model.Agent, owner *model.User) *Principal {
	return &Principal{Kind: KindToken, ID: TokenID(t.ID), User: owner, Token: t, Agent: a}
}

// UserID returns the principal ID "user:<id>".
func UserID(id int64) string { return TypeUser + ":" + strconv.FormatInt(id, 10) }

// TokenID returns the principal ID "token:<id>".
func TokenID(id int64) string { return "token:" + strconv.FormatInt(id, 10) }

type contextKey struct{}

// NewContext returns a copy of ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, contextKey{}, p)
}

// FromContext returns the principal NewContext stored in ctx, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(contextKey{}).(*Principal)
	return p
}
