package policy

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch starts reloading the bundle whenever BundlePath changes and returns once the watch is in place; it stops when ctx is done.
//
// Changes are debounced (Options.WatchDebounce) so an editor's burst of
// writes causes one reload. A directory bundle is watched with its
// subdirectories; a tarball is watched through its parent directory, because
// editors and `opa build` replace the file rather than write into it. The
// embedded default cannot change, so Watch is a no-op for it. Reload errors
// are logged by Reload and the previous bundle keeps serving. For SIGHUP,
// call Reload directly.
func (e *Engine) Watch(ctx context.Context) error {
	if e.opts.BundlePath == "" {
		return nil
	}
	root, err := filepath.Abs(e.opts.BundlePath)
	if err != nil {
		return fmt.Errorf("watch %s: %w", e.opts.BundlePath, err)
	}
	info, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("watch %s: %w", e.opts.BundlePath, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", e.opts.BundlePath, err)
	}
	relevant := func(string) bool { return true }
	if info.IsDir() {
		err = addTree(w, root)
	} else {
		relevant = func(name string) bool { return filepath.Clean(name) == root }
		err = w.Add(filepath.Dir(root))
	}
	if err != nil {
		w.Close()
		return fmt.Errorf("watch %s: %w", e.opts.BundlePath, err)
	}
	e.log.Info("watching policy bundle", "path", root)
	go e.watchLoop(ctx, w, info.IsDir(), relevant)
	return nil
}

// watchLoop debounces events into reloads until ctx is done.
func (e *Engine) watchLoop(ctx context.Context, w *fsnotify.Watcher, isDir bool, relevant func(string) bool) {
	defer w.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod || !relevant(ev.Name) {
				continue
			}
			if isDir && ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					_ = addTree(w, ev.Name) // a new subdirectory: watch it too
				}
			}
			timer.Reset(e.opts.WatchDebounce)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			e.log.Warn("policy bundle watch error", "error", err)
		case <-timer.C:
			_ = e.Reload(ctx) // logs its own outcome; the previous bundle keeps serving on error
		}
	}
}

// addTree watches dir and every directory below it.
func addTree(w *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return w.Add(p)
		}
		return nil
	})
}
