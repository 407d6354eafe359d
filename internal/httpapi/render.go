package httpapi

import (
	"strconv"
	"unicode/utf8"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/principal"
	"github.com/agentauthz/agentauthz/internal/view"
)

// Response views. Records are rendered by internal/view, which the CLI's
// --format=json shares, so a record has one JSON shape (and one timestamp
// format) everywhere; only API-specific envelopes live here.

type whoamiView struct {
	Principal    principalView `json:"principal"`
	User         *whoamiUser   `json:"user"`
	Agent        *view.Agent   `json:"agent"`
	Token        *view.Token   `json:"token"`
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
	out := whoamiView{Principal: principalView{Kind: string(p.Kind), ID: p.ID}, Audiences: view.NonNil(p.Audiences), Capabilities: view.NonNil(w.Capabilities)}
	if p.User != nil {
		out.User = &whoamiUser{ID: p.User.ID, Login: p.User.Login, Roles: view.NonNil(p.User.Roles)}
	}
	if p.Agent != nil {
		a := view.AgentOf(*p.Agent)
		out.Agent = &a
	}
	if p.Token != nil {
		t := view.TokenOf(*p.Token)
		out.Token = &t
	}
	return out
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
