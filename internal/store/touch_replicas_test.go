package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/store"
	"github.com/agentauthz/agentauthz/internal/store/pgtest"
)

// Replicas sharing one PostgreSQL database flush last_used_at for tokens
// they share, concurrently and in overlapping sets: no flush deadlocks or
// fails, and every token ends at the latest time any replica wrote. Without
// the id-order lock of the touch statement (postgresDialect.touchQuery) two
// flushes lock rows in the orders of their own plans and this test fails
// with "deadlock detected" (40P01): it failed in 3 of 3 runs without the
// lock and passed 5 of 5 with it. A hang PostgreSQL does not report as a
// deadlock fails at the deadline instead of go test's timeout.
func TestTouchFromReplicasNeverDeadlocks(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	url := pgtest.NewDatabase(t)
	const replicas, flushers, rounds, tokens = 4, 8, 15, 1200
	sts := make([]*store.SQL, replicas)
	for i := range sts {
		sts[i] = openStore(t, url)
	}
	if err := sts[0].Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := sts[0].CreateUser(ctx, model.User{Login: "owner", Roles: []string{"editor"}, Status: model.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	a, err := sts[0].CreateAgent(ctx, model.Agent{Slug: "bot", OwnerID: u.ID, Status: model.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, tokens)
	for i := range ids {
		tok, err := sts[0].CreateToken(ctx, model.Token{AgentID: a.ID, Hash: fmt.Sprintf("%064x", i), Prefix: "p"})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = tok.ID
	}

	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	var mu sync.Mutex
	latest := map[int64]time.Time{}
	var wg sync.WaitGroup
	for w := range flushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range rounds {
				used := map[int64]time.Time{} // a random half of the tokens
				for _, id := range ids {
					if rng.IntN(2) == 0 {
						used[id] = base.Add(time.Duration(rng.IntN(3_600_000)) * time.Millisecond)
					}
				}
				if err := sts[w%replicas].TouchTokens(ctx, used); err != nil {
					t.Errorf("flusher %d: %v", w, err)
					return
				}
				mu.Lock()
				for id, at := range used {
					if at.After(latest[id]) {
						latest[id] = at
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	list, err := sts[0].ListTokens(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != tokens {
		t.Fatalf("%d tokens listed, want %d", len(list), tokens)
	}
	for _, tok := range list {
		want, ok := latest[tok.ID]
		switch {
		case !ok && tok.LastUsedAt != nil:
			t.Errorf("token %d: last used %v, never touched", tok.ID, tok.LastUsedAt)
		case ok && (tok.LastUsedAt == nil || !tok.LastUsedAt.Equal(want)):
			t.Errorf("token %d: last used %v, want the latest time written, %v", tok.ID, tok.LastUsedAt, want)
		}
	}
}
