package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestCacheAndTouchFlagsAreValidated: --cache-size, --memo-size and --touch-min-interval
// (and their variables) refuse values that do not parse or make no sense,
// before the store is opened.
func TestCacheAndTouchFlagsAreValidated(t *testing.T) {
	cases := []struct {
		name, env, value string
		args             []string
		mention          string
	}{
		{"a cache size with a unit is refused", "AGENTAUTHZ_CACHE_SIZE", "10k", nil, "AGENTAUTHZ_CACHE_SIZE"},
		{"a min interval without a unit is refused", "AGENTAUTHZ_TOUCH_MIN_INTERVAL", "60", nil, "AGENTAUTHZ_TOUCH_MIN_INTERVAL"},
		{"a zero cache size is refused", "", "", []string{"--cache-size", "0"}, "--cache-size"},
		{"a zero cache size from the variable is refused", "AGENTAUTHZ_CACHE_SIZE", "0", nil, "--cache-size"},
		{"a negative memo size is refused", "", "", []string{"--memo-size", "-1"}, "--memo-size"},
		{"a memo size with a unit is refused", "AGENTAUTHZ_MEMO_SIZE", "16k", nil, "AGENTAUTHZ_MEMO_SIZE"},
		{"a negative min interval is refused", "", "", []string{"--touch-min-interval", "-1s"}, "--touch-min-interval"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv(c.env, c.value)
			}
			t.Setenv("AGENTAUTHZ_DATABASE_URL", "sqlite:"+t.TempDir()+"/t.db")
			var out, errb bytes.Buffer
			args := append([]string{"serve", "--addr", "127.0.0.1:0"}, c.args...)
			// A value wrongly accepted would start the server: the deadline
			// ends it, and the exit code fails the test instead of a hang.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if code := run(ctx, args, &out, &errb); code != exitUsage {
				t.Fatalf("exit %d, want %d (usage); stderr: %s", code, exitUsage, errb.String())
			}
			if !strings.Contains(errb.String(), c.mention) {
				t.Fatalf("the error does not name %s: %s", c.mention, errb.String())
			}
		})
	}
}

func TestCacheAndTouchFlagsHaveVariables(t *testing.T) {
	for flag, env := range map[string]string{"cache-size": "AGENTAUTHZ_CACHE_SIZE", "memo-size": "AGENTAUTHZ_MEMO_SIZE", "touch-min-interval": "AGENTAUTHZ_TOUCH_MIN_INTERVAL", "opa-config": "AGENTAUTHZ_OPA_CONFIG"} {
		if got := envBindings[flag]; got != env {
			t.Errorf("--%s is bound to %q, want %q", flag, got, env)
		}
	}
}

// TestMemoSizeFlagMapsToTheService: --memo-size=0 is no memo (the service's
// negative size), any other value is the size itself, never the default.
func TestMemoSizeFlagMapsToTheService(t *testing.T) {
	for flag, want := range map[int]int{0: -1, 1: 1, 16384: 16384, 1 << 20: 1 << 20} {
		if got := serviceMemoSize(flag); got != want {
			t.Errorf("--memo-size=%d gives the service %d, want %d", flag, got, want)
		}
	}
}
