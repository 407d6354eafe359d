package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/store"
	"github.com/agentauthz/agentauthz/internal/store/pgtest"
)

// BenchmarkTouchTokens is one last_used_at flush of touchBenchTokens
// tokens, every one moved forward (what the server's flusher writes each
// --touch-interval when that many tokens are in use): the cost that grows
// with the working set. It reports the cost per row.
func BenchmarkTouchTokens(b *testing.B) {
	const touchBenchTokens = 2000
	ctx := context.Background()
	urls := map[string]func(b *testing.B) string{
		"sqlite":   func(b *testing.B) string { return "sqlite:" + filepath.Join(b.TempDir(), "b.db") },
		"postgres": func(b *testing.B) string { return pgtest.NewDatabase(b) },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			st, err := store.Open(ctx, urls[name](b))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			if err := st.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			u, err := st.CreateUser(ctx, model.User{Login: "o", Roles: []string{"editor"}, Status: model.StatusActive})
			if err != nil {
				b.Fatal(err)
			}
			a, err := st.CreateAgent(ctx, model.Agent{Slug: "bot", OwnerID: u.ID, Status: model.StatusActive})
			if err != nil {
				b.Fatal(err)
			}
			ids := make([]int64, touchBenchTokens)
			for i := range ids {
				tok, err := st.CreateToken(ctx, model.Token{AgentID: a.ID, Hash: fmt.Sprintf("%064x", i), Prefix: "datamachine_bot_"})
				if err != nil {
					b.Fatal(err)
				}
				ids[i] = tok.ID
			}
			at := time.Now()
			used := make(map[int64]time.Time, len(ids))
			b.ReportAllocs()
			for b.Loop() {
				at = at.Add(time.Second)
				for _, id := range ids {
					used[id] = at
				}
				if err := st.TouchTokens(ctx, used); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*touchBenchTokens), "ns/row")
			// The flush really wrote: the last token carries the last time.
			got, err := st.ResolveTokenID(ctx, ids[len(ids)-1])
			if err != nil {
				b.Fatal(err)
			}
			if lu := got.Token.LastUsedAt; lu == nil || !lu.Equal(at.UTC().Truncate(time.Microsecond)) {
				b.Fatalf("last_used_at = %v, want %v", lu, at)
			}
		})
	}
}
