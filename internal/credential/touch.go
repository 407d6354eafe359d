package credential

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
)

// toucher coalesces last_used_at writes: a token used any number of times
// within one interval costs one row update at the next flush.
type toucher struct {
	st       model.Store
	logger   *slog.Logger
	mu       sync.Mutex
	pending  map[int64]time.Time
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newToucher(st model.Store, every time.Duration, logger *slog.Logger) *toucher {
	t := &toucher{st: st, logger: logger, pending: map[int64]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	go t.loop(every)
	return t
}

// used records that tokenID passed every check at 'at'.
func (t *toucher) used(tokenID int64, at time.Time) {
	t.mu.Lock()
	if prev, ok := t.pending[tokenID]; !ok || at.After(prev) {
		t.pending[tokenID] = at
	}
	t.mu.Unlock()
}

func (t *toucher) loop(every time.Duration) {
	defer close(t.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			t.flush(ctx)
			cancel()
		case <-t.stop:
			return
		}
	}
}

// flush writes the pending timestamps; on failure they are merged back so
// the next flush retries them.
func (t *toucher) flush(ctx context.Context) error {
	t.mu.Lock()
	batch := t.pending
	t.pending = map[int64]time.Time{}
	t.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := t.st.TouchTokens(ctx, batch); err != nil {
		t.logger.Warn("last_used_at flush failed; will retry", "tokens", len(batch), "err", err)
		for id, at := range batch {
			t.used(id, at)
		}
		return err
	}
	return nil
}

// close stops the loop and flushes what is pending.
func (t *toucher) close(ctx context.Context) error {
	t.stopOnce.Do(func() { close(t.stop) })
	<-t.done
	return t.flush(ctx)
}
