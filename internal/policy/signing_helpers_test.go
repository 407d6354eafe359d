package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
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

// tamper rewrites the file of a bundle tarball whose name ends in suffix.
func tamper(t testing.TB, tarball []byte, suffix string, edit func([]byte) []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tarball))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(h.Name, suffix) {
			edited := edit(b)
			if bytes.Equal(edited, b) {
				t.Fatalf("the edit left %s unchanged", h.Name)
			}
			b, found = edited, true
			h.Size = int64(len(b))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if !found {
		t.Fatalf("no file ending in %s in the bundle", suffix)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// tamperData ranks the viewer agent role as high as admin in a bundle's
// data.json: an escalation inside the manifest's roots, which only the
// signature's digest can catch.
func tamperData(b []byte) []byte {
	var data map[string]any
	if err := json.Unmarshal(b, &data); err != nil {
		panic(err)
	}
	cfg, _ := lookup(data, "agentauthz", "config").(map[string]any)
	roles, ok := cfg["agent_roles"].(map[string]any)
	if !ok {
		panic("data.json has no agentauthz.config.agent_roles")
	}
	roles["viewer"] = roles["admin"]
	out, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	return out
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
