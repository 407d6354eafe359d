package credential_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/credential"
	"github.com/agentauthz/agentauthz/internal/metrics"
	"github.com/agentauthz/agentauthz/internal/token"
)

func (f *fixture) negativeResolver(t *testing.T, negTTL time.Duration, m *metrics.Metrics) *credential.Resolver {
	r := credential.New(f.st, credential.Options{CacheTTL: time.Minute, NegativeTTL: negTTL, TouchInterval: time.Hour, Now: f.clock.Now, Metrics: m})
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// scrape returns the value line of a metric in the exposition format.
func scrape(t *testing.T, m *metrics.Metrics, series string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimPrefix(line, series+" ")
		}
	}
	return ""
}

func TestForgedTokenRepeatedCostsOneStoreQueryPerNegativeTTL(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	m := metrics.New()
	const ttl = 200 * time.Millisecond
	r := f.negativeResolver(t, ttl, m)
	forged, _ := token.Generate(token.DefaultPrefix, f.agent.Slug) // valid checksum, never issued

	before := f.st.resolves.Load()
	for i := range 5 {
		if _, err := r.LookupRaw(ctx, forged); reason(err) != "unknown" {
			t.Fatalf("attempt %d: %s, want unknown", i+1, reason(err))
		}
	}
	if n := f.st.resolves.Load() - before; n != 1 {
		t.Fatalf("5 lookups of one forged token cost %d store queries, want 1", n)
	}
	if got := scrape(t, m, "agentauthz_token_negative_cache_hits_total"); got != "4" {
		t.Errorf("negative cache hits = %q, want 4", got)
	}
	if got := scrape(t, m, `agentauthz_token_lookups_total{cache="hit",outcome="unknown"}`); got != "4" {
		t.Errorf("unknown lookups answered from cache = %q, want 4", got)
	}

	// Another forged token is its own entry.
	other, _ := token.Generate(token.DefaultPrefix, f.agent.Slug)
	if _, err := r.LookupRaw(ctx, other); reason(err) != "unknown" {
		t.Fatalf("second forgery: %s", reason(err))
	}
	if n := f.st.resolves.Load() - before; n != 2 {
		t.Fatalf("a second forged token cost %d store queries in all, want 2", n)
	}

	// A token issued after the negative entries were cached works at once:
	// its hash cannot have been asked for before it existed.
	raw, _ := f.issue(t, nil)
	if _, err := r.LookupRaw(ctx, raw); err != nil {
		t.Fatalf("token issued after negative entries: %v", err)
	}

	// The entry expires: after the TTL the store is asked again (a bounded
	// poll on the wall clock, which the expirable LRU uses).
	asked := f.st.resolves.Load()
	deadline := time.Now().Add(5 * time.Second)
	for f.st.resolves.Load() == asked {
		if time.Now().After(deadline) {
			t.Fatalf("the negative entry outlived its %v TTL by seconds", ttl)
		}
		time.Sleep(ttl / 4)
		if _, err := r.LookupRaw(ctx, forged); reason(err) != "unknown" {
			t.Fatalf("after TTL: %s", reason(err))
		}
	}
}

func TestNegativeCacheDisabledAsksTheStoreEveryTime(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	r := f.negativeResolver(t, 0, nil)
	forged, _ := token.Generate(token.DefaultPrefix, f.agent.Slug)
	before := f.st.resolves.Load()
	for range 3 {
		if _, err := r.LookupRaw(ctx, forged); reason(err) != "unknown" {
			t.Fatalf("got %s, want unknown", reason(err))
		}
	}
	if n := f.st.resolves.Load() - before; n != 3 {
		t.Fatalf("without a negative cache 3 lookups cost %d store queries, want 3", n)
	}
}

func TestStoreFailureIsNeverCachedAsUnknown(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	r := f.negativeResolver(t, time.Minute, nil)
	raw, _ := f.issue(t, nil)
	// A cancelled context makes the real store fail without answering.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.LookupRaw(cctx, raw); err == nil || reason(err) == "unknown" {
		t.Fatalf("lookup with a failing store: %s, want an infrastructure error", reason(err))
	}
	if _, err := r.LookupRaw(ctx, raw); err != nil {
		t.Fatalf("after the store recovered: %v; a failure must not be remembered as unknown", err)
	}
}
