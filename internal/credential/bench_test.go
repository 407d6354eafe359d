package credential_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
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

// BenchmarkCachedTokenHeap reports what one cached token costs the heap:
// bytes and objects (what the collector walks at every cycle, the cost
// that grows with the tokens in use). The shapes are the mix's: 20 tokens
// per agent, capability lists, allow-list tool policies, two user roles.
// Each iteration fills an empty cache with cachedHeapTokens lookups.
func BenchmarkCachedTokenHeap(b *testing.B) {
	const cachedHeapTokens = 2000
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "h.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	var raws []string
	for i := range cachedHeapTokens / 20 {
		u, err := st.CreateUser(ctx, model.User{Login: fmt.Sprintf("user-%d", i), Roles: []string{"editor", "author"}, Status: model.StatusActive})
		if err != nil {
			b.Fatal(err)
		}
		a, err := st.CreateAgent(ctx, model.Agent{Slug: fmt.Sprintf("bot-%d", i), OwnerID: u.ID, Status: model.StatusActive,
			ToolPolicy: &model.ToolPolicy{Mode: "allow", Tools: []string{"web_search", "fetch_url", "run_code", "read_file", "calendar", "translate"}}})
		if err != nil {
			b.Fatal(err)
		}
		for range 20 {
			raw, err := token.Generate(token.DefaultPrefix, a.Slug)
			if err != nil {
				b.Fatal(err)
			}
			caps := []string{"datamachine_chat", "datamachine_use_tools", "read"}
			if _, err := st.CreateToken(ctx, model.Token{AgentID: a.ID, Hash: token.Hash(raw), Prefix: token.Hint(raw), Capabilities: &caps}); err != nil {
				b.Fatal(err)
			}
			raws = append(raws, raw)
		}
	}
	fill := func() (bytes, objects float64) {
		r := credential.New(st, credential.Options{CacheTTL: time.Hour, CacheSize: 2 * cachedHeapTokens, TouchInterval: time.Hour})
		defer func() {
			if err := r.Close(ctx); err != nil {
				b.Fatal(err)
			}
		}()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, raw := range raws {
			if _, err := r.LookupRaw(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(r)
		return float64(after.HeapAlloc) - float64(before.HeapAlloc), float64(after.HeapObjects) - float64(before.HeapObjects)
	}
	fill() // the first fill also leaves the setup's garbage and the store's first-use state behind
	var bytes, objects float64
	for b.Loop() {
		by, ob := fill()
		bytes, objects = bytes+by, objects+ob
	}
	n := float64(b.N * cachedHeapTokens)
	b.ReportMetric(bytes/n, "B/token")
	b.ReportMetric(objects/n, "objects/token")
}
