package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOPAConfigRefusedAtStart: an OPA configuration that does not parse,
// names an unknown setting or a missing key file, or a second policy
// beside --policy-bundle, stops serve with exit 2 and a message naming it,
// before the store is opened.
func TestOPAConfigRefusedAtStart(t *testing.T) {
	cases := []struct {
		name, config string
		args         []string
		mention      string
	}{
		{"does not parse", "services: [\n", nil, "does not parse"},
		{"unknown setting", "decision_log: {console: true}\n", nil, `"decision_log"`},
		{"missing key file", "plugins: {agentauthz: {key_files: {k: /nonexistent.pem}}}\n", nil, "/nonexistent.pem"},
		{"two policies", "services: {s: {url: 'http://127.0.0.1:1'}}\nbundles: {b: {resource: x}}\n", []string{"--policy-bundle", "."}, "two policies"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "opa.yaml")
			if err := os.WriteFile(cfg, []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}
			db := filepath.Join(dir, "t.db")
			var out, errb bytes.Buffer
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--database-url", "sqlite:" + db, "--opa-config", cfg}, c.args...)
			if code := run(context.Background(), args, &out, &errb); code != exitUsage {
				t.Fatalf("exit %d, want %d (usage); stderr: %s", code, exitUsage, errb.String())
			}
			if !strings.Contains(errb.String(), cfg) || !strings.Contains(errb.String(), c.mention) {
				t.Fatalf("the error does not name %s and %s: %s", cfg, c.mention, errb.String())
			}
			if _, err := os.Stat(db); err == nil {
				t.Error("the store was opened")
			}
		})
	}
}
