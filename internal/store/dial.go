package store

import (
	"context"
	"database/sql"
	"net"
	"net/url"
	"time"

	"github.com/lib/pq"
)

// How PostgreSQL connections notice a server that stopped answering (host
// frozen, network black hole) instead of waiting for it forever:
//
//   - connect_timeout bounds dialling plus the startup handshake. A
//     connect_timeout in the URL (or PGCONNECT_TIMEOUT) wins, 0 included
//     (libpq's "wait indefinitely"); without one, defaultConnectTimeout.
//   - TCP keepalive probes an idle connection after keepAliveIdle, every
//     keepAliveInterval, and drops it after keepAliveCount unanswered probes
//     (about 11 s), so a pooled connection to a vanished peer is not handed
//     out again.
//   - TCP_USER_TIMEOUT (Linux) drops a connection whose sent data stays
//     unacknowledged for tcpUserTimeout, so a query written into a black
//     hole fails instead of waiting for the kernel's retransmission limit
//     (about 15 minutes).
//
// None of them can tell a stopped server process from a slow one on a live
// host: the kernel still acknowledges its packets. That case is bounded by
// the HTTP request deadline, not here.
const (
	defaultConnectTimeout = 5 * time.Second
	tcpUserTimeout        = 10 * time.Second
	keepAliveIdle         = 5 * time.Second
	keepAliveInterval     = 2 * time.Second
	keepAliveCount        = 3
)

// pgDialer is the net.Dialer lib/pq dials with: keepalive and, on Linux,
// TCP_USER_TIMEOUT. It serves both pq.Dialer and pq.DialerContext (the
// latter lets a connection attempt end with its context).
type pgDialer struct{ d net.Dialer }

var (
	_ pq.Dialer        = pgDialer{}
	_ pq.DialerContext = pgDialer{}
)

func newPGDialer() pgDialer {
	return pgDialer{d: net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{
			Enable:   true,
			Idle:     keepAliveIdle,
			Interval: keepAliveInterval,
			Count:    keepAliveCount,
		},
		Control: tcpUserTimeoutControl(tcpUserTimeout),
	}}
}

func (d pgDialer) Dial(network, address string) (net.Conn, error) {
	return d.d.Dial(network, address)
}

func (d pgDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.d.DialContext(ctx, network, address)
}

func (d pgDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return d.d.DialContext(ctx, network, address)
}

// postgresConfig parses a postgres:// URL into lib/pq's configuration and
// applies defaultConnectTimeout unless the URL or the environment sets a
// connect_timeout. Its errors may quote the URL: callers scrub them.
func postgresConfig(rawURL string) (pq.Config, error) {
	cfg, err := pq.NewConfig(rawURL)
	if err != nil {
		return pq.Config{}, err
	}
	explicit := false
	if u, err := url.Parse(rawURL); err == nil {
		explicit = u.Query().Has("connect_timeout")
	}
	if !explicit && cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	return cfg, nil
}

// openPostgres returns a pool that dials through pgDialer.
func openPostgres(rawURL string) (*sql.DB, error) {
	cfg, err := postgresConfig(rawURL)
	if err != nil {
		return nil, err
	}
	c, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, err
	}
	c.Dialer(newPGDialer())
	return sql.OpenDB(c), nil
}
