package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Private is a throwaway cluster of one test's own, started even when a
// shared server exists, for tests that do to the server what must never be
// done to a shared one: freeze it (Freeze) or take it away.
type Private struct {
	c *cluster
	// URL is the cluster's maintenance database, as user postgres.
	URL string
}

// StartPrivate initialises and starts a private cluster from the installed
// PostgreSQL binaries and stops it (resuming it first) when t ends.
// Without the binaries it skips t, or fails it when CI=true.
func StartPrivate(t testing.TB) *Private {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := startCluster(ctx)
	if err != nil {
		msg := "a private PostgreSQL cluster needs the server binaries (initdb, pg_ctl): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal("PostgreSQL is required under CI=true: " + msg)
		}
		t.Skip("skipping: " + msg)
	}
	p := &Private{c: c, URL: c.url}
	t.Cleanup(func() {
		if err := p.Resume(); err != nil {
			t.Errorf("pgtest: resume private cluster before stopping it: %v", err)
		}
		if err := c.stop(); err != nil {
			t.Errorf("pgtest: stop private cluster: %v", err)
		}
	})
	return p
}

// DataDir is the cluster's data directory.
func (p *Private) DataDir() string { return filepath.Join(p.c.dir, "data") }

// PostmasterPID reads the postmaster's pid from postmaster.pid.
func (p *Private) PostmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(p.DataDir(), "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("postmaster.pid: no pid in %q", first)
	}
	return pid, nil
}

// Processes returns the postmaster's pid and those of all its children
// (backends, checkpointer, walwriter, ...). Every backend calls setsid(),
// so signalling the postmaster's process group would miss them: children
// are found by their parent pid in /proc (Linux only).
func (p *Private) Processes() ([]int, error) {
	pm, err := p.PostmasterPID()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing children needs /proc: %w", err)
	}
	pids := []int{pm}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == pm {
			continue
		}
		if ppid, _, err := procStat(pid); err == nil && ppid == pm {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// procStat reads a process's parent pid and state from /proc/PID/stat.
func procStat(pid int) (ppid int, state byte, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, s)
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0][0], err
}

// Freeze stops the postmaster and then every child with SIGSTOP (the
// stopped postmaster forks no new ones) and waits until all are stopped:
// the server hangs the way a frozen host does, its sockets open and its
// kernel still acknowledging packets. It returns the frozen pids.
func (p *Private) Freeze() ([]int, error) {
	pm, err := p.PostmasterPID()
	if err != nil {
		return nil, err
	}
	if err := syscall.Kill(pm, syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("SIGSTOP postmaster %d: %w", pm, err)
	}
	pids, err := p.Processes()
	if err != nil {
		return nil, err
	}
	for _, pid := range pids[1:] {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil && !errors.Is(err, syscall.ESRCH) {
			return nil, fmt.Errorf("SIGSTOP %d: %w", pid, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for {
			_, state, err := procStat(pid)
			if err != nil || state == 'T' || state == 't' || state == 'Z' {
				break // stopped, or gone
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("process %d not stopped after SIGSTOP (state %c)", pid, state)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return pids, nil
}

// Resume sends SIGCONT to the postmaster and every child. Resuming a
// cluster that is not frozen does nothing.
func (p *Private) Resume() error {
	pids, err := p.Processes()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // not running
		}
		return err
	}
	var errs []error
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("SIGCONT %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}
