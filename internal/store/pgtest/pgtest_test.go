package pgtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDeadDatabaseURLIsReportedWithoutItsPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env := map[string]string{"DATABASE_URL": "postgres://app:s3cret@127.0.0.1:1/postgres?sslmode=disable"}
	_, err := find(ctx, func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("find succeeded with DATABASE_URL on a dead port")
	}
	if !strings.Contains(err.Error(), "DATABASE_URL=postgres://app:xxxxx@127.0.0.1:1/") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q should name the redacted DATABASE_URL and hide the password", err)
	}
}

func TestUnavailableIsFatalOnlyUnderCI(t *testing.T) {
	cause := errors.New("no server")
	fatal, msg := unavailableMessage(true, cause)
	if !fatal || !strings.HasPrefix(msg, "PostgreSQL is required under CI=true: set DATABASE_URL") || !strings.Contains(msg, "no server") {
		t.Errorf("under CI: fatal=%v msg=%q", fatal, msg)
	}
	fatal, msg = unavailableMessage(false, cause)
	if fatal || !strings.Contains(msg, "set DATABASE_URL") || !strings.Contains(msg, "no server") {
		t.Errorf("outside CI: fatal=%v msg=%q", fatal, msg)
	}
}

func TestThrowawayClusterStartsAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	if _, err := findBinDir(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := startCluster(ctx)
	if err != nil {
		t.Fatalf("startCluster: %v", err)
	}
	if err := AdminExec(ctx, c.url, "CREATE DATABASE pgtest_probe"); err != nil {
		t.Errorf("cluster at %s does not take statements: %v", c.url, err)
	}
	if err := c.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := ping(ctx, c.url); err == nil {
		t.Error("cluster still answers after stop")
	}
}
