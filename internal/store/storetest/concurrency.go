package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
)

var concurrencyRules = []rule{
	{"64 concurrent token creations yield 64 distinct rows", func(t *testing.T, s model.Store) {
		const n = 64
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		c := ctx(t)
		ids := make([]int64, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				tok, err := s.CreateToken(c, model.Token{AgentID: a.ID, Hash: hash(fmt.Sprint("tok", i)), Label: fmt.Sprint(i)})
				ids[i], errs[i] = tok.ID, err
			})
		}
		wg.Wait()
		seen := map[int64]bool{}
		for i := range n {
			noErr(t, fmt.Sprint("CreateToken ", i), errs[i])
			if seen[ids[i]] {
				t.Errorf("id %d assigned twice", ids[i])
			}
			seen[ids[i]] = true
		}
		list, err := s.ListTokens(c, a.ID)
		noErr(t, "ListTokens", err)
		equal(t, "stored tokens", len(list), n)
		for i := range n {
			r, err := s.ResolveTokenHash(c, hash(fmt.Sprint("tok", i)))
			noErr(t, "ResolveTokenHash", err)
			equal(t, fmt.Sprint("id of token ", i), r.Token.ID, ids[i])
		}
	}},
	{"mints racing a revocation: nothing minted under the revoked root resolves live", func(t *testing.T, s model.Store) {
		// Minters keep extending chains under the root (each mints under
		// what it minted last) while the root is revoked: whatever they
		// managed to insert must be marked revoked or resolve as ended.
		const minters, maxMints = 6, 200
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		root := mustToken(t, s, a.ID, "root")
		c := ctx(t)
		var started sync.WaitGroup
		started.Add(minters)
		var wg sync.WaitGroup
		var seq atomic.Int64
		for m := range minters {
			wg.Go(func() {
				parent := root.ID
				for i := range maxMints {
					tok, err := s.CreateToken(c, model.Token{AgentID: a.ID, Hash: hash(fmt.Sprint("m", m, "-", seq.Add(1))), Label: "child", ParentID: &parent})
					if i == 0 {
						started.Done()
					}
					if errors.Is(err, model.ErrParentRevoked) && i > 0 {
						return // the lineage was revoked under us: stop
					}
					if err != nil {
						t.Errorf("mint %d of minter %d: %v", i, m, err)
						return
					}
					parent = tok.ID
				}
			})
		}
		started.Wait()
		_, _, err := s.RevokeToken(c, a.ID, root.ID, at(0))
		noErr(t, "RevokeToken", err)
		wg.Wait()
		list, err := s.ListTokens(c, a.ID)
		noErr(t, "ListTokens", err)
		if len(list) < 1+minters {
			t.Fatalf("only %d tokens: the minters never raced the revocation", len(list))
		}
		for _, tok := range list {
			r, err := s.ResolveTokenHash(c, tok.Hash)
			noErr(t, "ResolveTokenHash", err)
			if r.Token.RevokedAt == nil && !r.LineageEnded {
				t.Errorf("token %d (parent %v) minted under the revoked root resolves live", tok.ID, tok.ParentID)
			}
		}
	}},
	{"revoke racing with resolve: no resolve returns a live token after revoke returned", func(t *testing.T, s model.Store) {
		const resolvers, afterRevoke = 8, 25
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		tok := mustToken(t, s, a.ID, "raced")
		c := ctx(t)
		var revoked atomic.Bool
		var live, beforeRevoke atomic.Int64
		errs := make(chan error, resolvers+1)
		var wg sync.WaitGroup
		for range resolvers {
			wg.Go(func() {
				seenAfter := 0
				for seenAfter < afterRevoke {
					startedAfterRevoke := revoked.Load()
					r, err := s.ResolveTokenHash(c, hash("raced"))
					if err != nil {
						errs <- err
						return
					}
					if !startedAfterRevoke {
						beforeRevoke.Add(1)
						continue
					}
					seenAfter++
					if r.Token.RevokedAt == nil {
						live.Add(1)
					}
				}
			})
		}
		wg.Go(func() {
			// Let the resolvers get going so the revoke lands among them
			// (bounded: a resolver that failed early must not hang the test;
			// its error is reported below).
			deadline := time.Now().Add(10 * time.Second)
			for beforeRevoke.Load() < resolvers && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if _, _, err := s.RevokeToken(c, a.ID, tok.ID, at(0)); err != nil {
				errs <- err
			}
			revoked.Store(true)
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("during the race: %v", err)
		}
		if n := live.Load(); n > 0 {
			t.Errorf("%d resolves that started after RevokeToken returned saw a live token", n)
		}
	}},
	{"concurrent grants to one principal leave one grant", func(t *testing.T, s model.Store) {
		const n = 16
		owner := mustUser(t, s, "ada")
		a := mustAgent(t, s, owner.ID, "bot")
		c := ctx(t)
		var created atomic.Int64
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, ok, err := s.PutGrant(c, model.Grant{AgentID: a.ID, Principal: "user:9", Role: "viewer"})
				errs[i] = err
				if ok {
					created.Add(1)
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			noErr(t, fmt.Sprint("PutGrant ", i), err)
		}
		equal(t, "grants reported created", created.Load(), int64(1))
		grants, err := s.ListGrants(c, a.ID)
		noErr(t, "ListGrants", err)
		equal(t, "stored grants", len(grants), 1)
	}},
}
