package credential

import "context"

// FlushTouches runs one scheduled last_used_at flush now (what the ticker
// does every TouchInterval), for tests that drive the clock.
func (r *Resolver) FlushTouches(ctx context.Context) error { return r.touch.flush(ctx, false) }

// TouchMemoryUsed is the number of tokens whose last write time is
// remembered.
func (r *Resolver) TouchMemoryUsed() int {
	r.touch.flushMu.Lock()
	defer r.touch.flushMu.Unlock()
	return len(r.touch.written)
}

// DefaultTouchMemory exposes Options.TouchMemory's default.
var DefaultTouchMemory = defaultTouchMemory
