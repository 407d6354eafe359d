package authz

import (
	"strconv"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
)

// The decision memo maps (bundle generation, the whole input document) to
// the decision. It is sound for ANY deterministic policy: the same data and
// the same input always yield the same decision, so an entry can never be
// stale — when a fact changes, the input changes and the key with it; when
// the bundle changes, the generation does. It never extends a credential:
// liveness (revocation, expiry, status) is checked in Go before a decision
// is asked for, and those facts are part of the input anyway. It is off while
// the active policy calls a non-deterministic built-in (time, rand, http).
//
// The key is a compact, injective encoding of the same facts input() renders
// (TestMemoKeyDistinguishesInputs keeps the two in step); building it costs a
// fraction of building the ast input, so a hit skips both that and the
// evaluation.

const (
	memoSize   = 16384
	maxMemoKey = 4096 // large inputs (long candidate lists) are not memoized
)

type memo struct {
	cache *lru.Cache[string, policy.Decision]
}

func newMemo() *memo {
	c, err := lru.New[string, policy.Decision](memoSize)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &memo{cache: c}
}

// key encodes the generation and every fact input() reads.
func (f *facts) key(generation uint64) (string, bool) {
	b := make([]byte, 0, 256)
	b = strconv.AppendUint(b, generation, 36)
	b = appendStr(b, f.ability)
	if p := f.principal; p != nil {
		b = append(b, 'P')
		b = appendStr(b, string(p.Kind))
		b = appendStr(b, p.ID)
		b = appendUser(b, p.User)
		b = appendStrs(b, p.Audiences)
		if t := p.Token; t != nil {
			b = append(b, 'T')
			b = strconv.AppendInt(b, t.ID, 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, t.AgentID, 10)
			b = appendOptStrs(b, t.Capabilities)
			if t.ExpiresAt != nil {
				b = append(b, 'e')
				b = strconv.AppendInt(b, t.ExpiresAt.UnixNano(), 10)
			}
		}
	}
	if f.agent != nil {
		b = append(b, 'A')
		b = appendAgent(b, f.agent, f.owner)
	}
	if f.grants != nil || f.candidates != nil {
		b = append(b, 'G')
		b = strconv.AppendInt(b, int64(len(f.grants)), 10)
		for _, g := range f.grants {
			b = append(b, ',')
			b = strconv.AppendInt(b, g.AgentID, 10)
			b = appendStr(b, g.Principal)
			b = appendStr(b, g.Role)
		}
	}
	b = appendStr(b, f.action)
	if f.hasTool {
		b = append(b, 't')
		b = appendStr(b, f.tool)
	}
	b = appendStr(b, f.minimumRole)
	for _, r := range f.requests {
		// derived from the rendered terms themselves, so it cannot drift
		b = append(b, 'R')
		b = appendStr(b, r[0].String())
		b = appendStr(b, r[1].String())
	}
	if f.resource != nil {
		b = append(b, 'O')
		b = strconv.AppendInt(b, f.resource.ID, 10)
	}
	if f.candidates != nil {
		b = append(b, 'C')
		b = strconv.AppendInt(b, int64(len(f.candidates)), 10)
		for i := range f.candidates {
			a := &f.candidates[i]
			b = appendAgent(b, a, f.owners[a.OwnerID])
		}
	}
	if len(b) > maxMemoKey {
		return "", false
	}
	return string(b), true
}

// appendStr writes a length-prefixed string: injective whatever it holds.
func appendStr(b []byte, s string) []byte {
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

func appendStrs(b []byte, ss []string) []byte {
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(len(ss)), 10)
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

func appendOptStrs(b []byte, ss *[]string) []byte {
	if ss == nil {
		return append(b, 'n')
	}
	return appendStrs(b, *ss)
}

func appendUser(b []byte, u *model.User) []byte {
	if u == nil {
		return append(b, 'n')
	}
	b = append(b, 'U')
	b = strconv.AppendInt(b, u.ID, 10)
	b = appendStrs(b, u.Roles)
	return appendStr(b, u.Status)
}

func appendAgent(b []byte, a *model.Agent, owner *model.User) []byte {
	b = strconv.AppendInt(b, a.ID, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, a.OwnerID, 10)
	b = appendStr(b, a.Status)
	if tp := a.ToolPolicy; tp != nil {
		b = append(b, 'p')
		b = appendStr(b, tp.Mode)
		b = appendStrs(b, tp.Tools)
	} else {
		b = append(b, 'n')
	}
	return appendUser(b, owner)
}
