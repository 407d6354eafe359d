package credential

import (
	"context"
	"unsafe"
)

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

// CacheEntriesSharingKey counts the cached entries whose Token.Hash is the
// cache key's own copy (the same bytes, not an equal string), and all
// cached entries.
func (r *Resolver) CacheEntriesSharingKey() (sharing, total int) {
	for _, k := range r.cache.Keys() {
		e, ok := r.cache.Peek(k)
		if !ok {
			continue
		}
		total++
		if unsafe.StringData(e.Resolved.Token.Hash) == unsafe.StringData(k) {
			sharing++
		}
	}
	return sharing, total
}
