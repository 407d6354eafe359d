package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// fixture returns the path of a fixture bundle under testdata.
func fixture(name string) string { return filepath.Join("testdata", name) }

// copyBundle copies a fixture bundle into a fresh temp dir the test may edit.
func copyBundle(t testing.TB, name string) string {
	t.Helper()
	dst := t.TempDir()
	replaceBundle(t, dst, name)
	return dst
}

// replaceBundle makes dir hold exactly the files of fixture name.
func replaceBundle(t testing.TB, dir, name string) {
	t.Helper()
	old, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range old {
		if err := os.RemoveAll(filepath.Join(dir, f.Name())); err != nil {
			t.Fatal(err)
		}
	}
	files, err := os.ReadDir(fixture(name))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(fixture(name), f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// writeTarball packs the files of fixture name (tests included, so the
// tarball path must skip them too) into a .tar.gz at dst, atomically.
func writeTarball(t testing.TB, name, dst string, edit func(file string, b []byte) []byte) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	files, err := os.ReadDir(fixture(name))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(fixture(name), f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			b = edit(f.Name(), b)
		}
		hdr := &tar.Header{Name: "/" + f.Name(), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Now()}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(dst), ".tmp-"+filepath.Base(dst))
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newEngine activates the bundle at path or fails the test.
func newEngine(t testing.TB, path string) (*Engine, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	e, err := New(context.Background(), Options{
		BundlePath:    path,
		Logger:        slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		WatchDebounce: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("New(%s): %v", path, err)
	}
	return e, logs
}

// input converts a Go value to the ast.Value Decide takes.
func input(t testing.TB, v map[string]any) ast.Value {
	t.Helper()
	val, err := ast.InterfaceToValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return val
}

// showAgent is an input where user 5 holds a grant of role on agent 7 (owned by user 3).
func showAgent(ability, role string) map[string]any {
	return map[string]any{
		"ability":   ability,
		"principal": map[string]any{"kind": "user", "id": "user:5", "user": map[string]any{"id": 5, "roles": []string{"subscriber"}, "status": "active"}},
		"agent":     map[string]any{"id": 7, "owner_id": 3, "status": "active"},
		"grants":    []any{map[string]any{"agent_id": 7, "principal": "user:5", "role": role}},
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
