// Package e2e tests agentauthz from the outside: the built binary, real
// HTTP on 127.0.0.1, real stores (a SQLite file and a fresh PostgreSQL
// database), seeded through the CLI as the store operator. Every scenario
// runs on both stores; every wait is a bounded poll.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/agentauthz/agentauthz/internal/store/pgtest"
)

// binPath is the agentauthz binary TestMain built for this run.
var binPath string

// moduleRoot is the repository root; `go test` runs in tests/e2e.
var moduleRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agentauthz-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	pgtest.Main(m, func() { _ = os.RemoveAll(dir) })
}

// build compiles ./cmd/agentauthz once into dir.
func build(dir string) error {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("module root not found at %s: %w", root, err)
	}
	moduleRoot = root
	binPath = filepath.Join(dir, "agentauthz")
	cmd := exec.Command("go", "build", "-o", binPath, "./cmd/agentauthz")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/agentauthz: %w\n%s", err, out)
	}
	return nil
}
