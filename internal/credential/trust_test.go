package credential_test

import (
	"context"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/token"
)

// An untrusted cache is neither read nor filled; trusting it again starts
// from empty. EvictAll empties it.
func TestUntrustedCacheIsBypassedAndTrustStartsEmpty(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	r := f.resolver(t, time.Hour)
	raw, _ := f.issue(t, nil)
	v, err := token.Verify(token.DefaultPrefix, raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.LookupRaw(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Cached(v); !ok {
		t.Fatal("not cached")
	}

	r.SetTrusted(false)
	if _, ok := r.Cached(v); ok || r.Trusted() {
		t.Fatal("an untrusted cache answered")
	}
	before := f.st.resolves.Load()
	for range 3 {
		if _, err := r.LookupRaw(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.st.resolves.Load() - before; n != 3 {
		t.Fatalf("3 untrusted lookups cost %d store queries, want 3", n)
	}

	r.SetTrusted(true)
	if _, ok := r.Cached(v); ok {
		t.Fatal("an entry survived the untrusted period")
	}
	if _, err := r.LookupRaw(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Cached(v); !ok {
		t.Fatal("a trusted cache is not filled again")
	}
	r.EvictAll()
	if _, ok := r.Cached(v); ok {
		t.Fatal("EvictAll left an entry")
	}
}
