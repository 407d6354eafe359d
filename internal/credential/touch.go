package credential

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentauthz/agentauthz/internal/model"
)

// toucher coalesces last_used_at writes so that they follow the working set
// of tokens, not the request rate:
//
//   - a token used any number of times within one interval costs at most
//     one row update at the next flush;
//   - a token whose last_used_at this process wrote less than minInterval
//     ago is not written again yet: its latest use stays pending (deferred)
//     and is written at the first flush after minInterval has passed, or on
//     close. Writes are thereby capped at about active tokens ÷ minInterval,
//     and the latest use is never lost, only delayed.
//
// The stored last_used_at is therefore accurate to max(interval,
// minInterval): it trails the true last use by at most about that much
// plus one interval. It never moves backwards (the store only ever raises
// it).
type toucher struct {
	st          model.Store
	logger      *slog.Logger
	now         func() time.Time
	base        time.Time // written's epoch: durations since base keep the monotonic clock
	minInterval time.Duration
	// slack lets a token become due a little before minInterval is over,
	// so that scheduling jitter of the ticker cannot push it to the flush
	// after the one it is due at: half an interval, at most a second.
	slack time.Duration

	mu      sync.Mutex // guards pending
	pending map[int64]time.Time

	// flushMu serialises flushes; it guards written.
	flushMu sync.Mutex
	// written holds, per token, when (time since base) this process
	// last wrote its last_used_at; only writes younger than minInterval are
	// kept (older ones are swept at every flush), and at most memory
	// tokens: a token not remembered for lack of room is written at every
	// flush it is used in, as if there were no minInterval.
	written map[int64]int64
	memory  int

	rows, deferred prometheus.Counter

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

type toucherOptions struct {
	every, minInterval time.Duration
	memory             int
	now                func() time.Time
	logger             *slog.Logger
	rows, deferred     prometheus.Counter
}

func newToucher(st model.Store, o toucherOptions) *toucher {
	t := &toucher{
		st: st, logger: o.logger, now: o.now, base: o.now(), minInterval: o.minInterval, slack: min(o.every/2, time.Second),
		pending: map[int64]time.Time{}, written: map[int64]int64{}, memory: o.memory,
		rows: o.rows, deferred: o.deferred,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go t.loop(o.every)
	return t
}

// used records that tokenID passed every check at 'at'.
func (t *toucher) used(tokenID int64, at time.Time) {
	t.mu.Lock()
	t.pendLocked(tokenID, at)
	t.mu.Unlock()
}

func (t *toucher) pendLocked(tokenID int64, at time.Time) {
	if prev, ok := t.pending[tokenID]; !ok || at.After(prev) {
		t.pending[tokenID] = at
	}
}

// requeue puts timestamps back into pending, keeping the later of two.
func (t *toucher) requeue(batch map[int64]time.Time) {
	t.mu.Lock()
	for id, at := range batch {
		t.pendLocked(id, at)
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
			_ = t.flush(ctx, false)
			cancel()
		case <-t.stop:
			return
		}
	}
}

// flush writes the pending timestamps that are due (all of them when all is
// set); the others stay pending. On failure the batch is merged back so
// the next flush retries it.
func (t *toucher) flush(ctx context.Context, all bool) error {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	t.mu.Lock()
	batch := t.pending
	t.pending = map[int64]time.Time{}
	t.mu.Unlock()

	now := int64(t.now().Sub(t.base))
	if t.minInterval > 0 {
		horizon := now - int64(t.minInterval-t.slack)
		for id, w := range t.written {
			if w <= horizon {
				delete(t.written, id) // due again: no need to remember it
			}
		}
		if !all {
			held := map[int64]time.Time{}
			for id, at := range batch {
				if _, recent := t.written[id]; recent {
					held[id] = at
					delete(batch, id)
				}
			}
			if len(held) > 0 {
				t.requeue(held)
				t.deferred.Add(float64(len(held)))
			}
		}
	}
	if len(batch) == 0 {
		return nil
	}
	if err := t.st.TouchTokens(ctx, batch); err != nil {
		t.logger.Warn("last_used_at flush failed; will retry", "tokens", len(batch), "err", err)
		t.requeue(batch)
		return err
	}
	t.rows.Add(float64(len(batch)))
	if t.minInterval > 0 {
		for id := range batch {
			if len(t.written) >= t.memory {
				break
			}
			t.written[id] = now
		}
	}
	return nil
}

// close stops the loop and writes everything pending, due or not.
func (t *toucher) close(ctx context.Context) error {
	t.stopOnce.Do(func() { close(t.stop) })
	<-t.done
	return t.flush(ctx, true)
}
