package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestAuthZENTrustedNetworksAreValidated: --authzen-trusted-networks (and
// its variable) refuse what is not a CIDR or an IP, naming the flag, before
// the store is opened.
func TestAuthZENTrustedNetworksAreValidated(t *testing.T) {
	if got := envBindings["authzen-trusted-networks"]; got != "AGENTAUTHZ_AUTHZEN_TRUSTED_NETWORKS" {
		t.Fatalf("--authzen-trusted-networks is bound to %q", got)
	}
	cases := []struct {
		name, env string
		args      []string
	}{
		{"a host name is refused", "", []string{"--authzen-trusted-networks", "pep.example.com"}},
		{"a prefix out of range is refused", "", []string{"--authzen-trusted-networks", "10.0.0.0/33"}},
		{"a bad network from the variable is refused", "10.0.0.0/8,not-a-net", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("AGENTAUTHZ_AUTHZEN_TRUSTED_NETWORKS", c.env)
			}
			t.Setenv("AGENTAUTHZ_DATABASE_URL", "sqlite:"+t.TempDir()+"/t.db")
			var out, errb bytes.Buffer
			args := append([]string{"serve", "--addr", "127.0.0.1:0"}, c.args...)
			if code := run(context.Background(), args, &out, &errb); code != exitUsage {
				t.Fatalf("exit %d, want %d (usage); stderr: %s", code, exitUsage, errb.String())
			}
			if !strings.Contains(errb.String(), "--authzen-trusted-networks") {
				t.Fatalf("the error does not name --authzen-trusted-networks: %s", errb.String())
			}
		})
	}
}
