package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
)

var tokenRules = []rule{
	{"created token round-trips", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		in := model.Token{
			AgentID: a.ID, Hash: hash("t1"), Prefix: "datamachine_bot_ab12", Label: "ci",
			Capabilities: &[]string{"datamachine_chat"}, ExpiresAt: ptr(at(time.Hour)), CreatedAt: at(0),
		}
		got, err := s.CreateToken(ctx(t), in)
		noErr(t, "CreateToken", err)
		if got.ID <= 0 {
			t.Fatalf("CreateToken assigned id %d, want > 0", got.ID)
		}
		want := in
		want.ID = got.ID
		equal(t, "created", got, want)
		list, err := s.ListTokens(ctx(t), a.ID)
		noErr(t, "ListTokens", err)
		equal(t, "listed", list, []model.Token{want})
	}},
	{"null and empty capabilities round-trip distinctly", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		var nilSlice []string
		cases := []struct {
			name string
			in   *[]string
			want *[]string
		}{
			{"null is the owner's ceiling", nil, nil},
			{"empty list is nothing", &[]string{}, &[]string{}},
			{"nil slice behind a pointer is nothing", &nilSlice, &[]string{}},
			{"list keeps its order", &[]string{"b", "a"}, &[]string{"b", "a"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				created, err := s.CreateToken(ctx(t), model.Token{AgentID: a.ID, Hash: hash(c.name), Capabilities: c.in})
				noErr(t, "CreateToken", err)
				equal(t, "created", created.Capabilities, c.want)
				r, err := s.ResolveTokenHash(ctx(t), hash(c.name))
				noErr(t, "ResolveTokenHash", err)
				equal(t, "resolved", r.Token.Capabilities, c.want)
			})
		}
		list, err := s.ListTokens(ctx(t), a.ID)
		noErr(t, "ListTokens", err)
		for i, c := range cases {
			equal(t, "listed "+c.name, list[i].Capabilities, c.want)
		}
	}},
	{"duplicate token hash is a conflict", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "a")
		b := mustAgent(t, s, owner.ID, "b")
		mustToken(t, s, a.ID, "same")
		_, err := s.CreateToken(ctx(t), model.Token{AgentID: b.ID, Hash: hash("same")})
		isErr(t, "CreateToken with a stored hash", err, model.ErrConflict)
	}},
	{"token for a missing agent is not found", func(t *testing.T, s model.Store) {
		_, err := s.CreateToken(ctx(t), model.Token{AgentID: 4242, Hash: hash("x")})
		isErr(t, "CreateToken", err, model.ErrNotFound)
	}},
	{"resolve returns token, agent and owner", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		tok := mustToken(t, s, a.ID, "t1")
		mustToken(t, s, a.ID, "t2")
		got, err := s.ResolveTokenHash(ctx(t), hash("t1"))
		noErr(t, "ResolveTokenHash", err)
		equal(t, "resolved", got, model.Resolved{Token: tok, Agent: a, Owner: &owner})
	}},
	{"resolve by id returns what resolve by hash returns", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		mustToken(t, s, a.ID, "t1")
		tok := mustToken(t, s, a.ID, "t2")
		byHash, err := s.ResolveTokenHash(ctx(t), hash("t2"))
		noErr(t, "ResolveTokenHash", err)
		got, err := s.ResolveTokenID(ctx(t), tok.ID)
		noErr(t, "ResolveTokenID", err)
		equal(t, "resolved by id", got, byHash)
		_, err = s.ResolveTokenID(ctx(t), tok.ID+1000)
		isErr(t, "ResolveTokenID of an unknown id", err, model.ErrNotFound)
	}},
	{"unknown hash is not found", func(t *testing.T, s model.Store) {
		_, err := s.ResolveTokenHash(ctx(t), hash("never stored"))
		isErr(t, "ResolveTokenHash", err, model.ErrNotFound)
	}},
	{"missing owner resolves with a nil owner", func(t *testing.T, s model.Store) {
		remover, ok := s.(OwnerRemover)
		if !ok {
			t.Skip("store under test cannot remove an owner row behind its foreign key")
		}
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		tok := mustToken(t, s, a.ID, "t1")
		noErr(t, "RemoveOwnerRow", remover.RemoveOwnerRow(ctx(t), owner.ID))
		got, err := s.ResolveTokenHash(ctx(t), hash("t1"))
		noErr(t, "ResolveTokenHash", err)
		equal(t, "resolved", got, model.Resolved{Token: tok, Agent: a, Owner: nil})
	}},
	{"revoking a token revokes every token minted from it, transitively", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "a")
		b := mustAgent(t, s, owner.ID, "b")
		root := mustToken(t, s, a.ID, "root")
		child := mustChild(t, s, a.ID, "child", root.ID)
		grandchild := mustChild(t, s, b.ID, "grandchild", child.ID)
		sibling := mustToken(t, s, a.ID, "sibling")
		equal(t, "child's parent", child.ParentID, &root.ID)

		got, descendants, err := s.RevokeToken(ctx(t), a.ID, root.ID, at(time.Minute))
		noErr(t, "RevokeToken", err)
		equal(t, "revoked root", got.RevokedAt, ptr(at(time.Minute)))
		equal(t, "descendants", descendants, []int64{child.ID, grandchild.ID})
		for _, seed := range []string{"child", "grandchild"} {
			r, err := s.ResolveTokenHash(ctx(t), hash(seed))
			noErr(t, "ResolveTokenHash "+seed, err)
			equal(t, seed+" revoked_at", r.Token.RevokedAt, ptr(at(time.Minute)))
		}
		r, err := s.ResolveTokenHash(ctx(t), hash("sibling"))
		noErr(t, "ResolveTokenHash sibling", err)
		if r.Token.RevokedAt != nil || r.Token.ID != sibling.ID {
			t.Errorf("sibling revoked with the root: %+v", r.Token)
		}
	}},
	{"a revoked token mints nothing", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "a")
		root := mustToken(t, s, a.ID, "root")
		_, _, err := s.RevokeToken(ctx(t), a.ID, root.ID, at(0))
		noErr(t, "RevokeToken", err)
		_, err = s.CreateToken(ctx(t), model.Token{AgentID: a.ID, Hash: hash("late"), Label: "late", ParentID: &root.ID})
		isErr(t, "CreateToken under a revoked parent", err, model.ErrParentRevoked)
		_, err = s.ResolveTokenHash(ctx(t), hash("late"))
		isErr(t, "ResolveTokenHash of the refused child", err, model.ErrNotFound)
	}},
	{"deleting an agent revokes the tokens its tokens minted elsewhere", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "a")
		b := mustAgent(t, s, owner.ID, "b")
		root := mustToken(t, s, a.ID, "root")
		elsewhere := mustChild(t, s, b.ID, "elsewhere", root.ID)
		revoked, err := s.DeleteAgent(ctx(t), a.ID)
		noErr(t, "DeleteAgent", err)
		equal(t, "revoked descendants", revoked, []int64{elsewhere.ID})
		r, err := s.ResolveTokenHash(ctx(t), hash("elsewhere"))
		noErr(t, "ResolveTokenHash", err)
		if r.Token.RevokedAt == nil {
			t.Errorf("a token minted by a deleted agent's token is still live")
		}
		if !r.LineageEnded {
			t.Errorf("a token whose parent was deleted resolves with a live lineage")
		}
	}},
	{"token of another agent is not found on revoke", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "a")
		b := mustAgent(t, s, owner.ID, "b")
		tok := mustToken(t, s, a.ID, "t1")
		_, _, err := s.RevokeToken(ctx(t), b.ID, tok.ID, at(0))
		isErr(t, "RevokeToken through the wrong agent", err, model.ErrNotFound)
		r, err := s.ResolveTokenHash(ctx(t), hash("t1"))
		noErr(t, "ResolveTokenHash", err)
		if r.Token.RevokedAt != nil {
			t.Errorf("token revoked through another agent: revoked_at %v", r.Token.RevokedAt)
		}
	}},
	{"missing token is not found on revoke", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "a")
		_, _, err := s.RevokeToken(ctx(t), a.ID, 4242, at(0))
		isErr(t, "RevokeToken", err, model.ErrNotFound)
	}},
	{"revoked token keeps its row", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		tok := mustToken(t, s, a.ID, "t1")
		got, _, err := s.RevokeToken(ctx(t), a.ID, tok.ID, at(time.Minute))
		noErr(t, "RevokeToken", err)
		want := tok
		want.RevokedAt = ptr(at(time.Minute))
		equal(t, "revoked", got, want)
		list, err := s.ListTokens(ctx(t), a.ID)
		noErr(t, "ListTokens", err)
		equal(t, "listed", list, []model.Token{want})
		r, err := s.ResolveTokenHash(ctx(t), hash("t1"))
		noErr(t, "ResolveTokenHash", err)
		equal(t, "resolved", r.Token, want)
	}},
	{"revoking twice keeps the first revoked_at", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		tok := mustToken(t, s, a.ID, "t1")
		_, _, err := s.RevokeToken(ctx(t), a.ID, tok.ID, at(time.Minute))
		noErr(t, "first RevokeToken", err)
		got, _, err := s.RevokeToken(ctx(t), a.ID, tok.ID, at(time.Hour))
		noErr(t, "second RevokeToken", err)
		equal(t, "revoked_at", got.RevokedAt, ptr(at(time.Minute)))
	}},
	{"touch never moves last_used_at backwards", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		t1 := mustToken(t, s, a.ID, "t1")
		t2 := mustToken(t, s, a.ID, "t2")
		t3 := mustToken(t, s, a.ID, "t3")
		noErr(t, "first TouchTokens", s.TouchTokens(ctx(t), map[int64]time.Time{t1.ID: at(time.Hour), t2.ID: at(time.Hour)}))
		// t1 older (ignored), t2 newer (applied), t3 first use, 4242 unknown (ignored).
		noErr(t, "second TouchTokens", s.TouchTokens(ctx(t), map[int64]time.Time{
			t1.ID: at(time.Minute), t2.ID: at(2 * time.Hour), t3.ID: at(time.Second), 4242: at(0),
		}))
		list, err := s.ListTokens(ctx(t), a.ID)
		noErr(t, "ListTokens", err)
		want := map[int64]*time.Time{t1.ID: ptr(at(time.Hour)), t2.ID: ptr(at(2 * time.Hour)), t3.ID: ptr(at(time.Second))}
		for _, tok := range list {
			equal(t, tok.Label+" last_used_at", tok.LastUsedAt, want[tok.ID])
		}
	}},
	{"touch orders sub-second timestamps correctly", func(t *testing.T, s model.Store) {
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		tok := mustToken(t, s, a.ID, "t1")
		// Whole and fractional seconds of the same second, and fractions of
		// different lengths, must compare as times, not as text.
		base := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
		steps := []struct{ touch, want time.Time }{
			{base, base},
			{base.Add(500 * time.Millisecond), base.Add(500 * time.Millisecond)},
			{base.Add(250 * time.Millisecond), base.Add(500 * time.Millisecond)},
			{base.Add(time.Second), base.Add(time.Second)},
		}
		for _, st := range steps {
			noErr(t, "TouchTokens", s.TouchTokens(ctx(t), map[int64]time.Time{tok.ID: st.touch}))
			r, err := s.ResolveTokenHash(ctx(t), hash("t1"))
			noErr(t, "ResolveTokenHash", err)
			equal(t, "last_used_at after touching "+st.touch.Format(time.RFC3339Nano), r.Token.LastUsedAt, ptr(st.want))
		}
	}},
	{"touch of a batch larger than one statement writes every row, never backwards", func(t *testing.T, s model.Store) {
		// The SQL store writes at most 500 rows per statement: 1,001
		// tokens and two unknown ids (ignored) span three chunks. The
		// second batch moves every other token backwards (ignored) and the
		// rest forwards, on both sides of every chunk boundary.
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		const n = 1001
		first := map[int64]time.Time{-1: at(0)}
		var ids []int64
		for i := range n {
			tok := mustToken(t, s, a.ID, fmt.Sprintf("t%04d", i))
			ids = append(ids, tok.ID)
			first[tok.ID] = at(time.Hour)
		}
		first[ids[n-1]+1000] = at(0)
		noErr(t, "first TouchTokens", s.TouchTokens(ctx(t), first))
		second := map[int64]time.Time{}
		want := map[int64]time.Time{}
		for i, id := range ids {
			second[id], want[id] = at(time.Minute), at(time.Hour)
			if i%2 == 1 {
				second[id], want[id] = at(2*time.Hour), at(2*time.Hour)
			}
		}
		noErr(t, "second TouchTokens", s.TouchTokens(ctx(t), second))
		list, err := s.ListTokens(ctx(t), a.ID)
		noErr(t, "ListTokens", err)
		if len(list) != n {
			t.Fatalf("ListTokens returned %d tokens, want %d", len(list), n)
		}
		for _, tok := range list {
			equal(t, tok.Label+" last_used_at", tok.LastUsedAt, ptr(want[tok.ID]))
		}
	}},
	{"touching nothing is a no-op", func(t *testing.T, s model.Store) {
		noErr(t, "TouchTokens(nil)", s.TouchTokens(ctx(t), nil))
	}},
}
