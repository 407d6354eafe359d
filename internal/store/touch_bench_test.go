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
// tokens, every one moved forward, and reports the cost per row: the
// server's flusher writes about N ÷ --touch-min-interval such rows a second
// when N tokens are in use, the part of its store traffic that grows with
// the working set. The table holds just these tokens (it stays cached).
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
			// Every flush really wrote: each token carries the last time.
			list, err := st.ListTokens(ctx, a.ID)
			if err != nil {
				b.Fatal(err)
			}
			if len(list) != len(ids) {
				b.Fatalf("%d tokens listed, want %d", len(list), len(ids))
			}
			want := at.UTC().Truncate(time.Microsecond)
			for _, tok := range list {
				if tok.LastUsedAt == nil || !tok.LastUsedAt.Equal(want) {
					b.Fatalf("token %d: last_used_at = %v, want %v", tok.ID, tok.LastUsedAt, want)
				}
			}
		})
	}
}
