package store

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
)

func TestPostgresConfigConnectTimeout(t *testing.T) {
	t.Setenv("PGCONNECT_TIMEOUT", "") // restored when the test ends
	os.Unsetenv("PGCONNECT_TIMEOUT")
	cases := []struct {
		name string
		url  string
		want time.Duration
	}{
		{"default", "postgres://app:s3cret@db.example:5432/agentauthz?sslmode=disable", defaultConnectTimeout},
		{"from the URL", "postgres://app:s3cret@db.example/agentauthz?connect_timeout=17", 17 * time.Second},
		{"explicit zero is libpq's wait indefinitely", "postgres://db.example/agentauthz?connect_timeout=0", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := postgresConfig(c.url)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ConnectTimeout != c.want {
				t.Errorf("ConnectTimeout = %s, want %s", cfg.ConnectTimeout, c.want)
			}
		})
	}
	t.Run("from PGCONNECT_TIMEOUT", func(t *testing.T) {
		t.Setenv("PGCONNECT_TIMEOUT", "9")
		cfg, err := postgresConfig("postgres://db.example/agentauthz")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ConnectTimeout != 9*time.Second {
			t.Errorf("ConnectTimeout = %s, want 9s", cfg.ConnectTimeout)
		}
	})
}

// A server that accepts TCP connections but never answers the startup
// message (a frozen postmaster: the kernel completes the handshake) must
// not hold Open past connect_timeout, and the error keeps the password out.
func TestOpenGivesUpOnASilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() { // accept and hold every connection, never answer
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	base := "postgres://app:s3cret@" + l.Addr().String() + "/agentauthz?sslmode=disable"
	cases := []struct {
		name     string
		url      string
		min, max time.Duration
	}{
		{"connect_timeout from the URL", base + "&connect_timeout=1", time.Second, 3 * time.Second},
		{"default connect timeout", base, defaultConnectTimeout, defaultConnectTimeout + 3*time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			s, err := Open(ctx, c.url)
			took := time.Since(start)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded against a server that never answers")
			}
			if !errors.Is(err, model.ErrUnavailable) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("Open error = %v, want ErrUnavailable without the password", err)
			}
			if took < c.min-100*time.Millisecond || took > c.max {
				t.Errorf("Open gave up after %s, want between %s and %s", took, c.min, c.max)
			}
		})
	}
}
