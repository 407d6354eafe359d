package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"
)

// TestOPAConfigRefusedAtStart: an OPA configuration that does not parse,
// names an unknown setting (at any depth), a missing key file, a key that
// is not one, an OCI service, or a second policy beside --policy-bundle, or
// whose keys refuse --policy-bundle, stops serve with exit 2 and a message
// naming it, before the store is opened.
func TestOPAConfigRefusedAtStart(t *testing.T) {
	keysConfig := fmt.Sprintf("keys: {signer: {algorithm: RS256}}\nplugins: {agentauthz: {key_files: {signer: %s}}}\n", testPublicKey(t))
	cases := []struct {
		name, config string
		args         []string
		mention      string
	}{
		{"does not parse", "services: [\n", nil, "does not parse"},
		{"unknown setting", "decision_log: {console: true}\n", nil, `"decision_log"`},
		{"missing key file", "plugins: {agentauthz: {key_files: {k: /nonexistent.pem}}}\n", nil, "/nonexistent.pem"},
		{"two policies", "services: {s: {url: 'http://127.0.0.1:1'}}\nbundles: {b: {resource: x}}\n", []string{"--policy-bundle", "."}, "two policies"},
		{"misspelt nested setting", "services: {s: {url: 'http://127.0.0.1:1'}}\nbundles: {authz: {resource: x, pollin: {}}}\n", nil, `bundles.authz: unknown field "pollin"`},
		{"key that is not PEM", "keys: {k: {key: 'not a pem', algorithm: RS256}}\n", nil, "keys.k: key is not PEM"},
		{"OCI registry", "services: {s: {url: 'https://registry.example', type: oci}}\n", nil, "services.s.type: oci"},
		{"keys and an unsigned --policy-bundle", keysConfig, []string{"--policy-bundle", unsignedBundle(t)}, "refused by its keys"},
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
			// a serve that starts is stopped, and fails the test, rather than hang it
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if code := run(ctx, args, &out, &errb); code != exitUsage {
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

// TestOPAConfigKeysVerifyPolicyBundle: with keys configured (and no bundles
// entry), --policy-bundle is verified with them at start and at reload: a
// signed one serves, an unsigned one never does; trusting the test-only
// key draws a warning.
func TestOPAConfigKeysVerifyPolicyBundle(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "opa.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "keys: {signer: {algorithm: RS256}}\nplugins: {agentauthz: {key_files: {signer: %s}}}\n", testPublicKey(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	signed := filepath.Join(dir, "signed.tar.gz")
	buildBundle(t, signed, filepath.Join(moduleRoot(t), "tests", "testdata", "bundle-signing", "test-only-signing-key.pem"))
	var logs bytes.Buffer
	a := &app{logger: slog.New(slog.NewTextHandler(&logs, nil)), stderr: io.Discard, policyBundle: signed}
	opa, err := a.loadOPAConfig(cfg)
	if err != nil {
		t.Fatalf("a signed --policy-bundle refused: %v", err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "key signer is the repository's TEST-ONLY public key") {
		t.Errorf("no warning that the configured key is the test-only one: %s", logs.String())
	}
	a.opa = opa
	opts := a.policyOptions()
	if opts.Verification == nil || opts.BundlePath != signed {
		t.Fatalf("options %+v: want %s verified", opts, signed)
	}
	eng, err := policy.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	// the same path replaced by an unsigned bundle is refused at reload
	if err := os.Rename(unsignedBundle(t), signed); err != nil {
		t.Fatal(err)
	}
	if err := eng.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("reload of an unsigned bundle: %v, want a signature refusal", err)
	}
}

// unsignedBundle builds the default bundle, unsigned, and returns its path.
func unsignedBundle(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "unsigned.tar.gz")
	buildBundle(t, p, "")
	return p
}

// buildBundle builds the default bundle as a tarball at out, signed with
// the PEM private key at signingKey ("" leaves it unsigned).
func buildBundle(t *testing.T, out, signingKey string) {
	t.Helper()
	var buf bytes.Buffer
	c := compile.New().WithPaths(stageBundle(t, nil)).WithAsBundle(true).WithOutput(&buf).WithRegoVersion(ast.RegoV1)
	if signingKey != "" {
		c = c.WithBundleSigningConfig(bundle.NewSigningConfig(signingKey, "RS256", ""))
	}
	if err := c.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testPublicKey is the absolute path of the test-only public key.
func testPublicKey(t *testing.T) string {
	return filepath.Join(moduleRoot(t), "tests", "testdata", "bundle-signing", "test-only-signing-key.pub.pem")
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}
