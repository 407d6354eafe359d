package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestEnvValuesParseLikeFlags: a variable that does not parse is a usage
// error naming it, never a silent fallback to the default.
func TestEnvValuesParseLikeFlags(t *testing.T) {
	cases := []struct {
		name, env, value string
		args             []string
	}{
		{"a mistyped boolean does not leave anonymous access on", "AGENTAUTHZ_ANONYMOUS", "no", []string{"serve", "--addr", "127.0.0.1:0"}},
		{"a lifetime without a unit is refused", "AGENTAUTHZ_MAX_TOKEN_LIFETIME", "90d", []string{"users", "list"}},
		{"a cache TTL without a unit is refused", "AGENTAUTHZ_CACHE_TTL", "60", []string{"serve", "--addr", "127.0.0.1:0"}},
		{"a body limit that is not a number is refused", "AGENTAUTHZ_BODY_LIMIT", "64k", []string{"serve", "--addr", "127.0.0.1:0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(c.env, c.value)
			t.Setenv("AGENTAUTHZ_DATABASE_URL", "sqlite:"+t.TempDir()+"/t.db")
			var out, errb bytes.Buffer
			code := run(context.Background(), c.args, &out, &errb)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d (usage); stderr: %s", code, exitUsage, errb.String())
			}
			if !strings.Contains(errb.String(), c.env) {
				t.Fatalf("the error does not name %s: %s", c.env, errb.String())
			}
		})
	}
}

func TestEnvFillsUnsetFlagsAndFlagsWin(t *testing.T) {
	t.Setenv("AGENTAUTHZ_DATABASE_URL", "sqlite:"+t.TempDir()+"/env.db")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--format=json", "users", "list"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	t.Setenv("AGENTAUTHZ_TOKEN_PREFIX", "BAD PREFIX")
	errb.Reset()
	if code := run(context.Background(), []string{"--token-prefix", "acme", "users", "list"}, &out, &errb); code != exitOK {
		t.Fatalf("the command-line flag must win over the variable: exit %d: %s", code, errb.String())
	}
}

// TestServeRefusesACacheTTLTooSmallToRun: a positive TTL under a
// millisecond would make a cache's expiry ticker panic; it is a usage
// error before anything starts. 0 (off) stays allowed.
func TestServeRefusesACacheTTLTooSmallToRun(t *testing.T) {
	for _, flag := range []string{"--cache-ttl", "--negative-cache-ttl"} {
		for _, ttl := range []string{"1ns", "99ns", "999us"} {
			t.Run(flag+"="+ttl, func(t *testing.T) {
				var out, errb bytes.Buffer
				code := run(context.Background(), []string{"--database-url", "sqlite:" + t.TempDir() + "/t.db", "serve", "--addr", "127.0.0.1:0", flag, ttl}, &out, &errb)
				if code != exitUsage || !strings.Contains(errb.String(), flag+" must be 0") || !strings.Contains(errb.String(), "at least 1ms") {
					t.Fatalf("exit %d, want %d with the %s sentence; stderr: %s", code, exitUsage, flag, errb.String())
				}
			})
		}
	}
}
