package httpapi

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/principal"
	"github.com/agentauthz/agentauthz/internal/store"
)

// Response views. Field names follow the seed (token_id, token_prefix,
// agent_slug, ...); times are RFC 3339 in UTC; optional values are null,
// never absent, unless documented otherwise.

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func optTS(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := ts(*t)
	return &s
}

type agentView struct {
	ID         int64             `json:"agent_id"`
	Slug       string            `json:"agent_slug"`
	Name       string            `json:"agent_name"`
	OwnerID    int64             `json:"owner_id"`
	Status     string            `json:"status"`
	ToolPolicy *store.ToolPolicy `json:"tool_policy"`
	CreatedAt  string            `json:"created_at"`
	UpdatedAt  string            `json:"updated_at"`
	// Role is the caller's role on the agent (show and list only).
	Role *string `json:"role,omitempty"`
}

func viewAgent(a store.Agent) agentView {
	tp := a.ToolPolicy
	if tp != nil && tp.Tools == nil {
		tp = &store.ToolPolicy{Mode: tp.Mode, Tools: []string{}}
	}
	return agentView{ID: a.ID, Slug: a.Slug, Name: a.Name, OwnerID: a.OwnerID, Status: a.Status,
		ToolPolicy: tp, CreatedAt: ts(a.CreatedAt), UpdatedAt: ts(a.UpdatedAt)}
}

func viewAgentWithRole(a store.Agent, role string) agentView {
	v := viewAgent(a)
	v.Role = &role
	return v
}

// tokenView is token metadata: never the hash, never the raw token.
type tokenView struct {
	ID           int64     `json:"token_id"`
	AgentID      int64     `json:"agent_id"`
	Prefix       string    `json:"token_prefix"`
	Label        string    `json:"label"`
	Capabilities *[]string `json:"capabilities"`
	LastUsedAt   *string   `json:"last_used_at"`
	ExpiresAt    *string   `json:"expires_at"`
	CreatedAt    string    `json:"created_at"`
	RevokedAt    *string   `json:"revoked_at"`
	ParentID     *int64    `json:"parent_token_id"`
}

func viewToken(t store.Token) tokenView {
	caps := t.Capabilities
	if caps != nil && *caps == nil {
		caps = &[]string{}
	}
	return tokenView{ID: t.ID, AgentID: t.AgentID, Prefix: t.Prefix, Label: t.Label, Capabilities: caps,
		LastUsedAt: optTS(t.LastUsedAt), ExpiresAt: optTS(t.ExpiresAt), CreatedAt: ts(t.CreatedAt), RevokedAt: optTS(t.RevokedAt), ParentID: t.ParentID}
}

func viewTokens(ts []store.Token) []tokenView {
	out := make([]tokenView, len(ts))
	for i, t := range ts {
		out[i] = viewToken(t)
	}
	return out
}

// tokenSaveWarning accompanies the only response that carries a raw token.
const tokenSaveWarning = "Save this token now: it cannot be shown again."

type createdTokenView struct {
	tokenView
	Token   string `json:"token"`
	Warning string `json:"warning"`
}

type userView struct {
	ID        int64    `json:"user_id"`
	Login     string   `json:"login"`
	Name      string   `json:"name"`
	Roles     []string `json:"roles"`
	Status    string   `json:"status"`
	CreatedAt string   `json:"created_at"`
}

func viewUser(u store.User) userView {
	return userView{ID: u.ID, Login: u.Login, Name: u.Name, Roles: nonNil(u.Roles), Status: u.Status, CreatedAt: ts(u.CreatedAt)}
}

type grantView struct {
	AgentID   int64  `json:"agent_id"`
	Principal string `json:"principal"`
	Role      string `json:"role"`
	GrantedAt string `json:"granted_at"`
	Implicit  bool   `json:"implicit,omitempty"`
}

func viewGrant(g store.Grant, implicit bool) grantView {
	return grantView{AgentID: g.AgentID, Principal: g.Principal, Role: g.Role, GrantedAt: ts(g.GrantedAt), Implicit: implicit}
}

type whoamiView struct {
	Principal    principalView `json:"principal"`
	User         *whoamiUser   `json:"user"`
	Agent        *agentView    `json:"agent"`
	Token        *tokenView    `json:"token"`
	Audiences    []string      `json:"audiences"`
	Capabilities []string      `json:"capabilities"`
}

type principalView struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

type whoamiUser struct {
	ID    int64    `json:"user_id"`
	Login string   `json:"login"`
	Roles []string `json:"roles"`
}

func viewWhoami(w authz.Whoami) whoamiView {
	p := w.Principal
	out := whoamiView{Principal: principalView{Kind: string(p.Kind), ID: p.ID}, Audiences: nonNil(p.Audiences), Capabilities: nonNil(w.Capabilities)}
	if p.User != nil {
		out.User = &whoamiUser{ID: p.User.ID, Login: p.User.Login, Roles: nonNil(p.User.Roles)}
	}
	if p.Agent != nil {
		a := viewAgent(*p.Agent)
		out.Agent = &a
	}
	if p.Token != nil {
		t := viewToken(*p.Token)
		out.Token = &t
	}
	return out
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// appendAuthorize encodes the POST /v1/authorize answer without reflection:
// {"allow":..,"denied_by":[..],"reasons":[..],"decision_id":"..","agent_id":..}.
// TestAuthorizeEncodingMatchesEncodingJSON pins it to encoding/json.
func appendAuthorize(b []byte, r authz.AuthorizeResult) []byte {
	b = append(b, `{"allow":`...)
	b = strconv.AppendBool(b, r.Allow)
	b = append(b, `,"denied_by":`...)
	b = appendStrings(b, r.DeniedBy)
	b = append(b, `,"reasons":`...)
	b = appendStrings(b, r.Reasons)
	b = append(b, `,"decision_id":`...)
	b = appendString(b, r.DecisionID)
	b = append(b, `,"agent_id":`...)
	b = strconv.AppendInt(b, r.AgentID, 10)
	return append(b, '}', '\n')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping like encoding/json
// (HTML-safe, invalid UTF-8 replaced by U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// principalOf returns the caller the principal middleware resolved, or nil.
func principalOf(c interface{ Get(string) any }) *principal.Principal {
	p, _ := c.Get(ctxPrincipal).(*principal.Principal)
	return p
}
