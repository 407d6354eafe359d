// Package view renders domain records as the JSON documents agentauthz
// shows: the REST API's responses and the CLI's --format=json output use
// these same types, so one record has one JSON shape everywhere.
//
// Field names follow the seed (token_id, token_prefix, agent_slug, ...);
// optional values are null, never absent, unless a field says otherwise;
// lists are [] rather than null. Like internal/model, this package does no
// I/O.
package view

import (
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
)

// TimeLayout is the one timestamp format of every JSON view: RFC 3339 in UTC
// with exactly six fractional digits, e.g. "2026-12-01T23:05:00.123456Z".
// Microseconds are the precision both stores keep, so a rendered time
// round-trips to the stored value. The digits are fixed, not trimmed, so
// every timestamp has the same width and sorts correctly as a string, and a
// whole second does not look like a truncated value.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Time renders t in TimeLayout (converted to UTC, truncated to the
// microsecond).
func Time(t time.Time) string { return t.UTC().Format(TimeLayout) }

// OptTime renders an optional instant; nil stays nil (JSON null).
func OptTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := Time(*t)
	return &s
}

// Agent is an agent as shown.
type Agent struct {
	ID         int64             `json:"agent_id"`
	Slug       string            `json:"agent_slug"`
	Name       string            `json:"agent_name"`
	OwnerID    int64             `json:"owner_id"`
	Status     string            `json:"status"`
	ToolPolicy *model.ToolPolicy `json:"tool_policy"`
	CreatedAt  string            `json:"created_at"`
	UpdatedAt  string            `json:"updated_at"`
	// Role is the caller's role on the agent, present only where a
	// listing or lookup computed it.
	Role *string `json:"role,omitempty"`
}

// AgentOf renders a without a role.
func AgentOf(a model.Agent) Agent {
	tp := a.ToolPolicy
	if tp != nil && tp.Tools == nil {
		tp = &model.ToolPolicy{Mode: tp.Mode, Tools: []string{}}
	}
	return Agent{ID: a.ID, Slug: a.Slug, Name: a.Name, OwnerID: a.OwnerID, Status: a.Status,
		ToolPolicy: tp, CreatedAt: Time(a.CreatedAt), UpdatedAt: Time(a.UpdatedAt)}
}

// AgentWithRole renders a with the caller's role; an empty role is left out.
func AgentWithRole(a model.Agent, role string) Agent {
	v := AgentOf(a)
	if role != "" {
		v.Role = &role
	}
	return v
}

// Token is token metadata: never the hash, never the raw token.
type Token struct {
	ID      int64  `json:"token_id"`
	AgentID int64  `json:"agent_id"`
	Prefix  string `json:"token_prefix"`
	Label   string `json:"label"`
	// Capabilities null is the owner's ceiling; [] is nothing.
	Capabilities *[]string `json:"capabilities"`
	LastUsedAt   *string   `json:"last_used_at"`
	ExpiresAt    *string   `json:"expires_at"`
	CreatedAt    string    `json:"created_at"`
	RevokedAt    *string   `json:"revoked_at"`
	ParentID     *int64    `json:"parent_token_id"`
}

// TokenOf renders t's metadata.
func TokenOf(t model.Token) Token {
	caps := t.Capabilities
	if caps != nil && *caps == nil {
		caps = &[]string{}
	}
	return Token{ID: t.ID, AgentID: t.AgentID, Prefix: t.Prefix, Label: t.Label, Capabilities: caps,
		LastUsedAt: OptTime(t.LastUsedAt), ExpiresAt: OptTime(t.ExpiresAt), CreatedAt: Time(t.CreatedAt),
		RevokedAt: OptTime(t.RevokedAt), ParentID: t.ParentID}
}

// TokensOf renders a token list; the result is never nil.
func TokensOf(ts []model.Token) []Token {
	out := make([]Token, len(ts))
	for i, t := range ts {
		out[i] = TokenOf(t)
	}
	return out
}

// SaveWarning accompanies the only output that carries a raw token.
const SaveWarning = "Save this token now: it cannot be shown again."

// CreatedToken is a new token's metadata plus the raw token, shown once.
type CreatedToken struct {
	Token
	Raw     string `json:"token"`
	Warning string `json:"warning"`
}

// CreatedTokenOf renders a just-minted token with its raw value.
func CreatedTokenOf(t model.Token, raw string) CreatedToken {
	return CreatedToken{Token: TokenOf(t), Raw: raw, Warning: SaveWarning}
}

// User is a user as shown.
type User struct {
	ID        int64    `json:"user_id"`
	Login     string   `json:"login"`
	Name      string   `json:"name"`
	Roles     []string `json:"roles"`
	Status    string   `json:"status"`
	CreatedAt string   `json:"created_at"`
}

// UserOf renders u.
func UserOf(u model.User) User {
	return User{ID: u.ID, Login: u.Login, Name: u.Name, Roles: NonNil(u.Roles), Status: u.Status, CreatedAt: Time(u.CreatedAt)}
}

// UsersOf renders a user list; the result is never nil.
func UsersOf(us []model.User) []User {
	out := make([]User, len(us))
	for i, u := range us {
		out[i] = UserOf(u)
	}
	return out
}

// Grant is one principal's role on an agent. Implicit (present only when
// true) marks the owner's access, which comes from ownership, not a grant.
type Grant struct {
	AgentID   int64  `json:"agent_id"`
	Principal string `json:"principal"`
	Role      string `json:"role"`
	GrantedAt string `json:"granted_at"`
	Implicit  bool   `json:"implicit,omitempty"`
}

// GrantOf renders g.
func GrantOf(g model.Grant, implicit bool) Grant {
	return Grant{AgentID: g.AgentID, Principal: g.Principal, Role: g.Role, GrantedAt: Time(g.GrantedAt), Implicit: implicit}
}

// NonNil returns ss, or an empty list for nil, so JSON shows [] not null.
func NonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}
