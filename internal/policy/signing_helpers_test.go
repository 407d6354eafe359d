package policy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"
)

// The test-only signing key pair that `make bundle` uses by default; the
// public key's path is absolute, for configurations written elsewhere.
var (
	testSigningKey = filepath.Join("..", "..", "tests", "testdata", "bundle-signing", "test-only-signing-key.pem")
	testPublicKey  = absolute(filepath.Join("..", "..", "tests", "testdata", "bundle-signing", "test-only-signing-key.pub.pem"))
)

func absolute(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return abs
}

// buildBundle builds fixture name (without its Rego tests, plus the extra
// files) as a bundle tarball, as `opa build` does, signed with the PEM
// private key at signingKey, or unsigned when it is "".
func buildBundle(t testing.TB, name, signingKey string, extra map[string]string) []byte {
	t.Helper()
	dir := copyBundle(t, name)
	tests, _ := filepath.Glob(filepath.Join(dir, "*_test.rego"))
	for _, f := range tests {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	for file, content := range extra {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	c := compile.New().WithPaths(dir).WithAsBundle(true).WithOutput(&buf).WithRegoVersion(ast.RegoV1)
	if signingKey != "" {
		c = c.WithBundleSigningConfig(bundle.NewSigningConfig(signingKey, "RS256", ""))
	}
	if err := c.Build(context.Background()); err != nil {
		t.Fatalf("building %s: %v", name, err)
	}
	return buf.Bytes()
}

// tamperRego makes the fixture policy allow everything: a policy edit
// inside the manifest's roots.
func tamperRego(b []byte) []byte {
	return bytes.Replace(b, []byte(`"allow": count(denied_by) == 0,`), []byte(`"allow": true,`), 1)
}

// otherKey writes a fresh RSA private key (not the one the servers trust) and returns its path.
func otherKey(t testing.TB) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "other-key.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// freshPublicKey writes the public half of a fresh RSA key as name in a
// fresh directory and returns its path.
func freshPublicKey(t testing.TB, name string) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, name, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// writeFile writes b to a fresh file named name and returns its path.
func writeFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
