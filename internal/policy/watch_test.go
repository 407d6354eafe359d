package policy

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
)

func TestWatchPicksUpEdits(t *testing.T) {
	tests := []struct {
		name   string
		bundle func(t *testing.T) string
		edit   func(t *testing.T, path string)
	}{
		{
			name:   "edit of data.json in a directory bundle",
			bundle: func(t *testing.T) string { return copyBundle(t, "valid") },
			edit: func(t *testing.T, dir string) {
				editData(t, dir, `"admin": 3`, `"admin": 3, "owner": 4`)
			},
		},
		{
			name: "tarball replaced by rename",
			bundle: func(t *testing.T) string {
				p := filepath.Join(t.TempDir(), "bundle.tar.gz")
				writeTarball(t, "valid", p, nil)
				return p
			},
			edit: func(t *testing.T, p string) {
				writeTarball(t, "valid", p, func(name string, b []byte) []byte {
					if name != "data.json" {
						return b
					}
					return bytes.Replace(b, []byte(`"admin": 3`), []byte(`"admin": 3, "owner": 4`), 1)
				})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.bundle(t)
			e, _ := newEngine(t, path)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := e.Watch(ctx); err != nil {
				t.Fatal(err)
			}
			tt.edit(t, path)
			waitFor(t, "the watcher to activate the edited bundle", func() bool {
				return e.Activation().Generation > 1
			})
			if got := e.Activation().AgentRoles["owner"]; got != 4 {
				t.Errorf("AgentRoles[owner] = %d after the edit, want 4", got)
			}
		})
	}
}

func TestWatchOfEmbeddedIsNoop(t *testing.T) {
	e := &Engine{}
	if err := e.Watch(context.Background()); err != nil {
		t.Errorf("Watch of the embedded bundle: %v", err)
	}
}

func TestWatchOfMissingPathFails(t *testing.T) {
	e := &Engine{opts: Options{BundlePath: filepath.Join(t.TempDir(), "gone")}}
	if err := e.Watch(context.Background()); err == nil {
		t.Error("Watch of a missing path succeeded")
	}
}
