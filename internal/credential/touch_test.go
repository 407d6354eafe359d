package credential_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/credential"
	"github.com/agentauthz/agentauthz/internal/metrics"
	"github.com/agentauthz/agentauthz/internal/model"
)

// rowStore counts the rows handed to TouchTokens and can fail it.
type rowStore struct {
	model.Store
	mu   sync.Mutex
	rows map[int64]int
	fail bool
}

func (s *rowStore) TouchTokens(ctx context.Context, used map[int64]time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("store down")
	}
	for id := range used {
		s.rows[id]++
	}
	return s.Store.TouchTokens(ctx, used)
}

func (s *rowStore) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.rows {
		n += c
	}
	return n
}

func (f *fixture) lastUsed(t *testing.T, id int64) *time.Time {
	t.Helper()
	toks, err := f.st.ListTokens(context.Background(), f.agent.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range toks {
		if x.ID == id {
			return x.LastUsedAt
		}
	}
	t.Fatalf("token %d not listed", id)
	return nil
}

func wantLastUsed(t *testing.T, what string, got *time.Time, want time.Time) {
	t.Helper()
	if got == nil || !got.Equal(want.Truncate(time.Microsecond)) {
		t.Fatalf("%s: last_used_at = %v, want %v", what, got, want)
	}
}

// TestTouchMinIntervalHoldsBackButNeverLoses: within the minimum interval a
// token's uses are held back, the latest is written once it has passed,
// and Close writes whatever is still held back.
func TestTouchMinIntervalHoldsBackButNeverLoses(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	rs := &rowStore{Store: f.st, rows: map[int64]int{}}
	m := metrics.New()
	r := credential.New(rs, credential.Options{
		CacheTTL: time.Hour, TouchInterval: time.Hour, TouchMinInterval: time.Minute, Now: f.clock.Now, Metrics: m,
	})
	t.Cleanup(func() { r.Close(ctx) })
	rawA, a := f.issue(t, nil)
	rawB, b := f.issue(t, nil)
	use := func(raw string) time.Time {
		t.Helper()
		if _, err := r.LookupRaw(ctx, raw); err != nil {
			t.Fatal(err)
		}
		return f.clock.Now()
	}
	flush := func() {
		t.Helper()
		if err := r.FlushTouches(ctx); err != nil {
			t.Fatal(err)
		}
	}

	t0 := use(rawA)
	flush() // A never written: due
	wantLastUsed(t, "A after its first flush", f.lastUsed(t, a.ID), t0)

	f.clock.Add(10 * time.Second)
	t10 := use(rawA)
	use(rawB)
	flush() // A written 10 s ago: held back; B new: written
	wantLastUsed(t, "A held back", f.lastUsed(t, a.ID), t0)
	wantLastUsed(t, "B on its first flush", f.lastUsed(t, b.ID), t10)

	f.clock.Add(40 * time.Second)
	flush() // 50 s: A still held back
	wantLastUsed(t, "A at 50 s", f.lastUsed(t, a.ID), t0)

	f.clock.Add(10 * time.Second)
	flush() // 60 s: A's held-back use is due, though A was not used since
	wantLastUsed(t, "A once the minimum interval passed", f.lastUsed(t, a.ID), t10)

	f.clock.Add(time.Second)
	t61 := use(rawA)
	flush() // held back again
	wantLastUsed(t, "A right after a write", f.lastUsed(t, a.ID), t10)
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wantLastUsed(t, "A after Close", f.lastUsed(t, a.ID), t61)

	if got := rs.rows[a.ID]; got != 3 {
		t.Fatalf("A written %d times, want 3 (t0, the held-back t10, Close)", got)
	}
	if got := scrape(t, m, "agentauthz_token_last_used_rows_written_total"); got != "4" {
		t.Fatalf("rows written metric = %q, want 4 (A three times, B once)", got)
	}
	if got := scrape(t, m, "agentauthz_token_last_used_deferred_total"); got != "3" {
		t.Fatalf("deferred metric = %q, want 3 (A at 10 s, 50 s and 61 s)", got)
	}
}

// TestTouchWritesFollowTheWorkingSet: every token used between every flush
// for two minutes costs one write per token per minimum interval, not one
// per flush.
func TestTouchWritesFollowTheWorkingSet(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	rs := &rowStore{Store: f.st, rows: map[int64]int{}}
	const interval = 5 * time.Second
	r := credential.New(rs, credential.Options{
		CacheTTL: time.Hour, TouchInterval: time.Hour, TouchMinInterval: time.Minute, Now: f.clock.Now,
	})
	t.Cleanup(func() { r.Close(ctx) })
	const n = 40
	raws := make([]string, n)
	ids := make([]int64, n)
	for i := range raws {
		var tok model.Token
		raws[i], tok = f.issue(t, nil)
		ids[i] = tok.ID
	}
	var last time.Time
	for flushAt := time.Duration(0); flushAt < 2*time.Minute; flushAt += interval { // 24 flushes
		for _, raw := range raws {
			if _, err := r.LookupRaw(ctx, raw); err != nil {
				t.Fatal(err)
			}
		}
		last = f.clock.Now()
		if err := r.FlushTouches(ctx); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(interval)
	}
	// Writes at 0 s and 60 s; 24 × 40 = 960 without the minimum.
	if got := rs.total(); got != 2*n {
		t.Fatalf("%d rows written over 24 flushes, want %d", got, 2*n)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		wantLastUsed(t, fmt.Sprintf("token %d after Close", id), f.lastUsed(t, id), last)
	}
}

// TestTouchWithoutMinIntervalWritesEveryFlush: 0 keeps the old behaviour.
func TestTouchWithoutMinIntervalWritesEveryFlush(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	rs := &rowStore{Store: f.st, rows: map[int64]int{}}
	r := credential.New(rs, credential.Options{CacheTTL: time.Hour, TouchInterval: time.Hour, Now: f.clock.Now})
	t.Cleanup(func() { r.Close(ctx) })
	raw, tok := f.issue(t, nil)
	for range 3 {
		f.clock.Add(time.Second)
		if _, err := r.LookupRaw(ctx, raw); err != nil {
			t.Fatal(err)
		}
		if err := r.FlushTouches(ctx); err != nil {
			t.Fatal(err)
		}
		wantLastUsed(t, "each flush", f.lastUsed(t, tok.ID), f.clock.Now())
	}
	if got := rs.rows[tok.ID]; got != 3 {
		t.Fatalf("written %d times, want 3", got)
	}
	if got := r.TouchMemoryUsed(); got != 0 {
		t.Fatalf("%d write times remembered without a minimum interval, want 0", got)
	}
}

// TestTouchMemoryIsBounded: beyond TouchMemory, tokens are written at every
// flush (as without a minimum) and nothing more is remembered; entries are
// forgotten once the minimum interval has passed.
func TestTouchMemoryIsBounded(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	rs := &rowStore{Store: f.st, rows: map[int64]int{}}
	r := credential.New(rs, credential.Options{
		CacheTTL: time.Hour, TouchInterval: time.Hour, TouchMinInterval: time.Minute, TouchMemory: 2, Now: f.clock.Now,
	})
	t.Cleanup(func() { r.Close(ctx) })
	var raws []string
	for range 5 {
		raw, _ := f.issue(t, nil)
		raws = append(raws, raw)
	}
	for range 3 {
		for _, raw := range raws {
			if _, err := r.LookupRaw(ctx, raw); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.FlushTouches(ctx); err != nil {
			t.Fatal(err)
		}
		if got := r.TouchMemoryUsed(); got > 2 {
			t.Fatalf("%d write times remembered, bound is 2", got)
		}
		f.clock.Add(5 * time.Second)
	}
	// 5 rows at the first flush, then the 3 not remembered at each of two more.
	if got := rs.total(); got != 5+3+3 {
		t.Fatalf("%d rows written, want 11", got)
	}
	// A minute on, the two remembered tokens' held-back uses are written
	// (and remembered anew); a minute after that, with no use, nothing is
	// remembered.
	for i, want := range []int{2, 0} {
		f.clock.Add(time.Minute)
		if err := r.FlushTouches(ctx); err != nil {
			t.Fatal(err)
		}
		if got := r.TouchMemoryUsed(); got != want {
			t.Fatalf("minute %d: %d write times remembered, want %d", i+1, got, want)
		}
	}
	if got := rs.total(); got != 11+2 {
		t.Fatalf("%d rows written, want 13", got)
	}
}

// TestTouchFailureIsRetried: a failed flush keeps its batch pending, merged
// with later uses, and does not count as a write for the minimum interval.
func TestTouchFailureIsRetried(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	rs := &rowStore{Store: f.st, rows: map[int64]int{}, fail: true}
	r := credential.New(rs, credential.Options{
		CacheTTL: time.Hour, TouchInterval: time.Hour, TouchMinInterval: time.Minute, Now: f.clock.Now,
	})
	t.Cleanup(func() { r.Close(ctx) })
	raw, tok := f.issue(t, nil)
	if _, err := r.LookupRaw(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if err := r.FlushTouches(ctx); err == nil {
		t.Fatal("flush against a failing store reported no error")
	}
	f.clock.Add(time.Second)
	if _, err := r.LookupRaw(ctx, raw); err != nil {
		t.Fatal(err)
	}
	rs.mu.Lock()
	rs.fail = false
	rs.mu.Unlock()
	if err := r.FlushTouches(ctx); err != nil {
		t.Fatal(err)
	}
	wantLastUsed(t, "after the retry", f.lastUsed(t, tok.ID), f.clock.Now())
}

func TestDefaultTouchMemory(t *testing.T) {
	cases := []struct {
		size     int
		ttl, min time.Duration
		want     int
	}{
		{10000, 5 * time.Second, time.Minute, 120000},
		{10000, 0, time.Minute, 120000},
		{10000, 7 * time.Second, time.Minute, 90000},
		{10000, 5 * time.Second, 0, 10000},
		{10000, 5 * time.Minute, time.Minute, 10000},
	}
	for _, c := range cases {
		if got := credential.DefaultTouchMemory(c.size, c.ttl, c.min); got != c.want {
			t.Errorf("defaultTouchMemory(%d, %s, %s) = %d, want %d", c.size, c.ttl, c.min, got, c.want)
		}
	}
}
