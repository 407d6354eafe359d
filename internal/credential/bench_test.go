package credential_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/credential"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/store"
	"github.com/agentauthz/agentauthz/internal/store/pgtest"
	"github.com/agentauthz/agentauthz/internal/token"
)

// BenchmarkLookup resolves one bearer token: from the cache, and cold (a
// store round trip per lookup, as with --cache-ttl=0) on each store.
func BenchmarkLookup(b *testing.B) {
	ctx := context.Background()
	stores := map[string]func(b *testing.B) string{
		"sqlite":   func(b *testing.B) string { return "sqlite:" + filepath.Join(b.TempDir(), "b.db") },
		"postgres": func(b *testing.B) string { return pgtest.NewDatabase(b) },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		st, err := store.Open(ctx, stores[name](b))
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		u, _ := st.CreateUser(ctx, model.User{Login: "o", Roles: []string{"editor"}, Status: model.StatusActive})
		a, _ := st.CreateAgent(ctx, model.Agent{Slug: "bot", OwnerID: u.ID, Status: model.StatusActive})
		raw, _ := token.Generate(token.DefaultPrefix, "bot")
		if _, err := st.CreateToken(ctx, model.Token{AgentID: a.ID, Hash: token.Hash(raw), Prefix: token.Hint(raw)}); err != nil {
			b.Fatal(err)
		}
		for _, ttl := range []time.Duration{time.Minute, 0} {
			label := name + "/cached"
			if ttl == 0 {
				label = name + "/cold"
			}
			b.Run(label, func(b *testing.B) {
				r := credential.New(st, credential.Options{CacheTTL: ttl, TouchInterval: time.Hour})
				defer r.Close(ctx)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := r.LookupRaw(ctx, raw); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
		st.Close()
	}
}
