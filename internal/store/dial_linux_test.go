package store

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The dialer's sockets carry keepalive and TCP_USER_TIMEOUT as configured.
func TestPGDialerSetsKeepaliveAndUserTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			defer c.Close()
			_, _ = c.Read(make([]byte, 1))
		}
	}()
	for _, dial := range []struct {
		name string
		fn   func() (net.Conn, error)
	}{
		{"DialContext", func() (net.Conn, error) {
			return newPGDialer().DialContext(context.Background(), "tcp", l.Addr().String())
		}},
		{"DialTimeout", func() (net.Conn, error) {
			return newPGDialer().DialTimeout("tcp", l.Addr().String(), 5*time.Second)
		}},
	} {
		t.Run(dial.name, func(t *testing.T) {
			conn, err := dial.fn()
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			raw, err := conn.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]struct {
				level, opt, value int
			}{
				"SO_KEEPALIVE":     {unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
				"TCP_KEEPIDLE":     {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(keepAliveIdle / time.Second)},
				"TCP_KEEPINTVL":    {unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(keepAliveInterval / time.Second)},
				"TCP_KEEPCNT":      {unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepAliveCount},
				"TCP_USER_TIMEOUT": {unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(tcpUserTimeout / time.Millisecond)},
			}
			for name, w := range want {
				var got int
				var gerr error
				if err := raw.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), w.level, w.opt) }); err != nil {
					t.Fatal(err)
				}
				if gerr != nil {
					t.Errorf("getsockopt %s: %v", name, gerr)
				} else if got != w.value {
					t.Errorf("%s = %d, want %d", name, got, w.value)
				}
			}
		})
	}
}

// Unix sockets are dialled without TCP options (and without failing).
func TestPGDialerLeavesUnixSocketsAlone(t *testing.T) {
	path := t.TempDir() + "/.s.PGSQL.5432"
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conn, err := newPGDialer().DialContext(context.Background(), "unix", path)
	if err != nil {
		t.Fatalf("dial unix socket: %v", err)
	}
	conn.Close()
}
