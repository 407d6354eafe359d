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

// BenchmarkCachedTokenHeap reports what one token in use costs the heap:
// bytes and objects (what the collector walks at every cycle, the cost
// that grows with the tokens in use): its cache entry and its pending
// last_used_at write. The tokens are mix-like: 20 per agent, a capability
// list, an allow-list tool policy, an owner with two roles. Each iteration
// fills an empty cache with 2,000 lookups, collecting garbage
// every 100 of them as a busy server would between fills; ns/op is
// meaningless (those collections).
func BenchmarkCachedTokenHeap(b *testing.B) {
	raws, st := cachedHeapWorld(b, 2000)
	cachedTokenHeap(b, st, raws) // the first fill also leaves the setup's garbage and the store's first-use state behind
	var bytes, objects float64
	for b.Loop() {
		by, ob := cachedTokenHeap(b, st, raws)
		bytes, objects = bytes+by, objects+ob
	}
	b.ReportMetric(bytes/float64(b.N), "B/token")
	b.ReportMetric(objects/float64(b.N), "objects/token")
}

// TestCachedTokenHeapStaysSmall keeps BenchmarkCachedTokenHeap's figure
// honest: with names interned and the hash held once a token in use costs
// about 13 objects, 25 without the interning (the ceiling leaves room for
// library changes, not for losing it).
func TestCachedTokenHeapStaysSmall(t *testing.T) {
	raws, st := cachedHeapWorld(t, 400) // objects per token do not depend on the count
	cachedTokenHeap(t, st, raws)
	if _, objects := cachedTokenHeap(t, st, raws); objects > 18 {
		t.Fatalf("a cached token costs %.1f heap objects, want at most 18", objects)
	}
}

// A cached entry keeps no second copy of its token's hash: its Token.Hash
// is the cache key's bytes (one object less per cached token than the
// store's own copy, which BenchmarkCachedTokenHeap counts).
func TestCachedEntryHoldsTheKeysHash(t *testing.T) {
	raws, st := cachedHeapWorld(t, 20)
	ctx := context.Background()
	r := credential.New(st, credential.Options{CacheTTL: time.Hour, CacheSize: 100, TouchInterval: time.Hour})
	defer func() {
		r.EvictAll()
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}()
	for _, raw := range raws {
		if _, err := r.LookupRaw(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	if sharing, total := r.CacheEntriesSharingKey(); total != len(raws) || sharing != total {
		t.Fatalf("%d of %d cached entries hold the key's copy of the hash, want all %d", sharing, total, len(raws))
	}
}

// cachedHeapWorld seeds a SQLite store with n tokens (a multiple of 20).
func cachedHeapWorld(tb testing.TB, n int) ([]string, model.Store) {
	tb.Helper()
	ctx := context.Background()
	st := migratedSQLite(tb)
	var raws []string
	for i := range n / 20 {
		u, err := st.CreateUser(ctx, model.User{Login: fmt.Sprintf("user-%d", i), Roles: []string{"editor", "author"}, Status: model.StatusActive})
		if err != nil {
			tb.Fatal(err)
		}
		a, err := st.CreateAgent(ctx, model.Agent{Slug: fmt.Sprintf("bot-%d", i), OwnerID: u.ID, Status: model.StatusActive,
			ToolPolicy: &model.ToolPolicy{Mode: "allow", Tools: []string{"web_search", "fetch_url", "run_code", "read_file", "calendar", "translate"}}})
		if err != nil {
			tb.Fatal(err)
		}
		for range 20 {
			raw, err := token.Generate(token.DefaultPrefix, a.Slug)
			if err != nil {
				tb.Fatal(err)
			}
			caps := []string{"datamachine_chat", "datamachine_use_tools", "read"}
			if _, err := st.CreateToken(ctx, model.Token{AgentID: a.ID, Hash: token.Hash(raw), Prefix: token.Hint(raw), Capabilities: &caps}); err != nil {
				tb.Fatal(err)
			}
			raws = append(raws, raw)
		}
	}
	return raws, st
}

// cachedTokenHeap fills a new resolver's cache with raws and returns the
// live heap it added, in bytes and objects per token.
func cachedTokenHeap(tb testing.TB, st model.Store, raws []string) (bytes, objects float64) {
	tb.Helper()
	ctx := context.Background()
	r := credential.New(st, credential.Options{CacheTTL: time.Hour, CacheSize: 2 * len(raws), TouchInterval: time.Hour})
	defer func() {
		r.EvictAll() // the LRU's cleanup goroutine outlives Close and would keep the entries
		if err := r.Close(ctx); err != nil {
			tb.Fatal(err)
		}
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i, raw := range raws {
		if _, err := r.LookupRaw(ctx, raw); err != nil {
			tb.Fatal(err)
		}
		if i%100 == 99 {
			runtime.GC()
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(r)
	n := float64(len(raws))
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / n, (float64(after.HeapObjects) - float64(before.HeapObjects)) / n
}
