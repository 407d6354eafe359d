// Package changes keeps a server's token cache in step with changes that
// other processes commit to the shared store: other replicas of a fleet on
// one PostgreSQL, or the CLI beside a server on one SQLite file.
//
//   - PostgreSQL: triggers (store migration 00003_notify.sql) NOTIFY
//     store.ChangeChannel in the committing transaction; a Follower LISTENs
//     through a lib/pq Listener and evicts exactly the named entries
//     (token → EvictToken, agent → EvictAgent, user → EvictOwner).
//   - SQLite: a Follower polls PRAGMA data_version every PollInterval and
//     empties the cache when another connection has committed.
//
// The cache is trusted only while the Follower is confirmed to be
// following: on PostgreSQL, the listener is connected and LISTENing and a
// ping on its connection succeeded within StaleAfter; on SQLite, a poll
// completed within StaleAfter. Otherwise the Follower calls
// Cache.SetTrusted(false) (every lookup asks the store) and, once it is
// following again, SetTrusted(true), which empties the cache before using
// it. A reconnection (lib/pq sends a nil notification: notifications may
// have been lost) and a payload that does not parse empty the cache too.
//
// So a change committed by any writer reaches this process within about
// StaleAfter (1 s by default): at once through a notification, or, if the
// notification is lost with the connection, by the cache being emptied
// once the loss is noticed.
package changes

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentauthz/agentauthz/internal/metrics"
	"github.com/agentauthz/agentauthz/internal/store"
)

// Cache is what a Follower drives: credential.Resolver.
type Cache interface {
	EvictToken(tokenID int64)
	EvictAgent(agentID int64)
	EvictOwner(userID int64)
	EvictAll()
	SetTrusted(trusted bool)
}

// Options configures a Follower. Zero values take the defaults.
type Options struct {
	// PollInterval is how often the follower confirms it is following:
	// a ping on the listener's connection (PostgreSQL) or a data_version
	// poll (SQLite). Default 250ms.
	PollInterval time.Duration
	// StaleAfter is how long the cache stays trusted without a
	// confirmation; it bounds how late a change is noticed when the
	// connection dies silently. Default 1s.
	StaleAfter time.Duration
	// MinReconnect and MaxReconnect bound the listener's reconnection
	// back-off (PostgreSQL). Defaults 100ms and 5s.
	MinReconnect, MaxReconnect time.Duration
	Logger                     *slog.Logger
	Metrics                    *metrics.Metrics
}

func (o *Options) defaults() {
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = time.Second
	}
	if o.MinReconnect <= 0 {
		o.MinReconnect = 100 * time.Millisecond
	}
	if o.MaxReconnect < o.MinReconnect {
		o.MaxReconnect = max(5*time.Second, o.MinReconnect)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Follower follows one store's changes into one Cache; Close stops it.
type Follower struct {
	cache  Cache
	opts   Options
	logger *slog.Logger
	counts *prometheus.CounterVec

	mu        sync.Mutex // orders trust transitions
	following bool       // connected and listening (PostgreSQL); always true on SQLite
	lastOK    time.Time  // start of the latest successful confirmation
	trusted   bool       // what the cache was last told
	lost      uint64     // connection losses, to discard a stale "listening"
	closed    bool
	up        atomic.Bool
	since     time.Time // when trust last changed (or the follower started)
	lastNote  time.Time // latest change learned of: a valid notification, a new data_version

	stop chan struct{}
	done sync.WaitGroup
	once sync.Once
	l    *pq.Listener // PostgreSQL only
}

func newFollower(c Cache, opts Options) *Follower {
	opts.defaults()
	f := &Follower{cache: c, opts: opts, logger: opts.Logger, counts: opts.Metrics.ChangeNotifications(), stop: make(chan struct{}), since: time.Now()}
	opts.Metrics.ChangeListener(f.Up)
	// Until the first confirmation nothing is trusted.
	c.SetTrusted(false)
	return f
}

// Up reports whether the follower is following: the token cache is
// trusted. A readiness check may use it (a replica that is not following
// still answers correctly, from the store, only slower).
func (f *Follower) Up() bool { return f.up.Load() }

// State is what a Follower reports about itself (for /readyz).
type State struct {
	Up bool // the token cache is trusted
	// Since is when Up last changed; before the first confirmation, when
	// the follower started.
	Since time.Time
	// LastChange is when the latest change by another writer was learned
	// of (a notification that parsed, or a new SQLite data_version); zero
	// if none yet.
	LastChange time.Time
}

// State reports whether the follower is up, since when, and when it last
// learned of a change.
func (f *Follower) State() State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return State{Up: f.trusted, Since: f.since, LastChange: f.lastNote}
}

// noted records that a change was learned of now.
func (f *Follower) noted() {
	f.mu.Lock()
	f.lastNote = time.Now()
	f.mu.Unlock()
}

// Close stops following; the cache is left untrusted (every lookup asks
// the store).
func (f *Follower) Close() error {
	var err error
	f.once.Do(func() {
		close(f.stop)
		if f.l != nil {
			err = f.l.Close()
		}
		f.done.Wait()
		f.mu.Lock()
		f.following, f.closed = false, true
		f.applyLocked(time.Now())
		f.mu.Unlock()
	})
	return err
}

// apply tells the cache whether to trust itself, after a state change or
// a tick. f.mu held.
func (f *Follower) applyLocked(now time.Time) {
	want := f.following && !f.lastOK.IsZero() && now.Sub(f.lastOK) <= f.opts.StaleAfter
	if want == f.trusted {
		return
	}
	f.trusted, f.since = want, now
	f.cache.SetTrusted(want) // empties the cache either way
	f.up.Store(want)
	switch {
	case f.closed:
	case want:
		f.logger.Info("change follower up: token cache emptied and trusted again")
	default:
		f.logger.Warn("change follower down: token cache bypassed until it is back", "last_confirmed", f.lastOK)
	}
}

func (f *Follower) confirmed(at time.Time) {
	f.mu.Lock()
	if at.After(f.lastOK) {
		f.lastOK = at
	}
	f.applyLocked(time.Now())
	f.mu.Unlock()
}

// watch withdraws trust once the latest confirmation is older than
// StaleAfter, even while a ping or poll hangs.
func (f *Follower) watch() {
	defer f.done.Done()
	t := time.NewTicker(f.opts.PollInterval / 2)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.mu.Lock()
			f.applyLocked(time.Now())
			f.mu.Unlock()
		}
	}
}

// ---- PostgreSQL ----

// ListenPostgres starts following the PostgreSQL database at rawURL. It
// returns at once; the cache is trusted once the listener is connected,
// LISTENing and has answered a ping.
func ListenPostgres(rawURL string, c Cache, opts Options) (*Follower, error) {
	f := newFollower(c, opts)
	l, err := store.NewListener(rawURL, f.opts.MinReconnect, f.opts.MaxReconnect, f.event)
	if err != nil {
		return nil, err
	}
	f.l = l
	f.done.Add(4)
	go f.watch()
	go f.listen()
	go f.consume()
	go f.ping()
	return f, nil
}

// event is lib/pq's connection state callback (on its goroutine).
func (f *Follower) event(ev pq.ListenerEventType, err error) {
	switch ev {
	case pq.ListenerEventDisconnected, pq.ListenerEventConnectionAttemptFailed:
		f.mu.Lock()
		if f.following {
			f.logger.Warn("change listener lost its connection", "err", err)
		}
		f.following = false
		f.lost++
		f.applyLocked(time.Now())
		f.mu.Unlock()
	}
	// Connected needs the LISTEN too (listen); Reconnected is followed by
	// a nil notification (consume).
}

// listen issues the LISTEN (blocking until a connection exists).
func (f *Follower) listen() {
	defer f.done.Done()
	for {
		f.mu.Lock()
		lost := f.lost
		f.mu.Unlock()
		err := f.l.Listen(store.ChangeChannel)
		if err == nil {
			f.mu.Lock()
			if f.lost == lost { // else the reconnection's nil notification will say so
				f.following = true
				f.applyLocked(time.Now())
			}
			f.mu.Unlock()
			return
		}
		if errors.Is(err, pq.ErrChannelAlreadyOpen) {
			return
		}
		select {
		case <-f.stop:
			return
		case <-time.After(f.opts.MinReconnect):
			// Listen failed with a server error (or the listener closed).
			f.logger.Error("change listener: LISTEN failed", "err", err)
		}
	}
}

// bulkEvict is the size of a burst of notifications (waiting together)
// beyond which the cache is emptied instead of evicted entry by entry: each
// eviction scans the cache, and revoking or deleting an agent with many
// tokens notifies once per token.
const bulkEvict = 64

func (f *Follower) consume() {
	defer f.done.Done()
	batch := make([]*pq.Notification, 0, 4*bulkEvict)
	for {
		select {
		case <-f.stop:
			return
		case n := <-f.l.Notify:
			batch = append(batch[:0], n)
		drain:
			for len(batch) < cap(batch) {
				select {
				case n := <-f.l.Notify:
					batch = append(batch, n)
				default:
					break drain
				}
			}
			bulk := len(batch) > bulkEvict
			if bulk {
				f.cache.EvictAll()
			}
			for _, n := range batch {
				if n == nil {
					f.reconnected()
					continue
				}
				f.handle(n.Extra, bulk)
			}
		}
	}
}

// reconnected handles lib/pq's nil notification: the connection was
// re-established and LISTEN re-issued, and what happened meanwhile is
// unknown. The cache is emptied, and trusted again (emptied once more)
// as soon as a ping confirms the connection.
func (f *Follower) reconnected() {
	f.counts.WithLabelValues("reconnect").Inc()
	f.cache.EvictAll()
	f.mu.Lock()
	f.following = true
	f.applyLocked(time.Now())
	f.mu.Unlock()
}

func (f *Follower) ping() {
	defer f.done.Done()
	t := time.NewTicker(f.opts.PollInterval)
	defer t.Stop()
	for {
		start := time.Now()
		if err := f.l.Ping(); err == nil {
			f.confirmed(start)
		}
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
	}
}

// payload is a notification from 00003_notify.sql.
type payload struct {
	T  string `json:"t"`
	ID *int64 `json:"id"`
}

// handle applies one notification payload; with evicted, the cache was
// already emptied for the burst it came in and only invalid payloads are
// still logged.
func (f *Follower) handle(extra string, evicted bool) {
	var p payload
	err := json.Unmarshal([]byte(extra), &p)
	if err == nil && p.ID == nil {
		err = errors.New("no id")
	}
	if err == nil && p.T != "token" && p.T != "agent" && p.T != "user" {
		err = errors.New("unknown type")
	}
	if err == nil && !evicted {
		f.evict(p.T, *p.ID)
	}
	if err != nil {
		f.counts.WithLabelValues("invalid").Inc()
		f.cache.EvictAll()
		f.logger.Error("change notification does not parse; token cache emptied", "payload", truncate(extra, 200), "err", err)
		return
	}
	f.noted()
	f.counts.WithLabelValues(p.T).Inc()
}

func (f *Follower) evict(kind string, id int64) {
	switch kind {
	case "token":
		f.cache.EvictToken(id)
	case "agent":
		f.cache.EvictAgent(id)
	case "user":
		f.cache.EvictOwner(id)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ---- SQLite ----

// DataVersioner is the store's PRAGMA data_version (store.SQL.DataVersion).
type DataVersioner interface {
	DataVersion(ctx context.Context) (int64, error)
}

// PollSQLite starts following a SQLite store: every PollInterval it reads
// data_version and empties the cache when it changed (another process
// committed). SQLite names no rows, and emptying is cheap on one host.
func PollSQLite(st DataVersioner, c Cache, opts Options) *Follower {
	f := newFollower(c, opts)
	f.following = true
	f.done.Add(2)
	go f.watch()
	go f.poll(st)
	return f
}

func (f *Follower) poll(st DataVersioner) {
	defer f.done.Done()
	t := time.NewTicker(f.opts.PollInterval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-f.stop
		cancel()
	}()
	var last int64
	known := false
	for {
		start := time.Now()
		v, err := st.DataVersion(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				f.logger.Warn("change poll: data_version failed", "err", err)
			}
			known = false // the next value is compared with nothing: emptied
		case !known || v != last:
			if known {
				f.noted()
				f.counts.WithLabelValues("commit").Inc()
			}
			// First value: the cache was untrusted (empty) until now anyway.
			f.cache.EvictAll()
			last, known = v, true
			f.confirmed(start)
		default:
			f.confirmed(start)
		}
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
	}
}
