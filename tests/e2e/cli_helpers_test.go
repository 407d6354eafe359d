package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/store/pgtest"
)

// cliTimeout bounds one CLI invocation.
const cliTimeout = 30 * time.Second

// cliResult is one finished CLI invocation.
type cliResult struct {
	args           []string
	stdout, stderr string
	code           int
}

// cli runs the binary as the store operator on dbURL and returns what it
// printed and its exit code.
func cli(t *testing.T, dbURL string, args ...string) cliResult {
	t.Helper()
	full := append([]string{"--database-url", dbURL}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, full...)
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := cliResult{args: args, stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("agentauthz %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// cliJSON runs a command with --format=json, requires exit 0 and decodes
// stdout into out (when not nil).
func cliJSON(t *testing.T, dbURL string, out any, args ...string) {
	t.Helper()
	r := cli(t, dbURL, append([]string{"--format=json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("agentauthz %s: exit %d; stderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(r.stdout), out); err != nil {
			t.Fatalf("agentauthz %s: decoding %q: %v", strings.Join(args, " "), r.stdout, err)
		}
	}
}

// eachStore runs fn as the subtests "sqlite" (a file in t.TempDir()) and
// "postgres" (a fresh database from pgtest; skipped without PostgreSQL
// unless CI=true).
func eachStore(t *testing.T, fn func(t *testing.T, dbURL string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, sqliteURL(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, pgtest.NewDatabase(t))
	})
}

func sqliteURL(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "agentauthz.db")
}

// createdToken is a token create answer (CLI --format=json and HTTP 201).
type createdToken struct {
	ID           int64      `json:"token_id"`
	AgentID      int64      `json:"agent_id"`
	Capabilities *[]string  `json:"capabilities"`
	ExpiresAt    *time.Time `json:"expires_at"`
	RevokedAt    *time.Time `json:"revoked_at"`
	Token        string     `json:"token"`
	Warning      string     `json:"warning"`
}

// world is the seeded cast, the same on every store:
//
//	users:  chubes (editor), sam (subscriber), carol (contributor), root (administrator)
//	agents: chubes-bot    owner chubes, tools allow [web_search]; user:sam operator, user:carol viewer, audience:public viewer
//	        acme-bot      owner chubes; audience:acme operator
//	        chubes-private owner chubes; no grants
//	        carol-bot     owner carol; audience:acme viewer
type world struct {
	db     string
	agents []string // every slug
}

var worldAgents = []string{"chubes-bot", "acme-bot", "chubes-private", "carol-bot"}

// worldSteps create the cast through the CLI as the store operator.
var worldSteps = [][]string{
	{"users", "create", "chubes", "--role=editor", "--name=Chris"},
	{"users", "create", "sam", "--role=subscriber"},
	{"users", "create", "carol", "--role=contributor"},
	{"users", "create", "root", "--role=administrator"},
	{"agents", "create", "chubes-bot", "--owner=chubes", `--tool-policy={"mode":"allow","tools":["web_search"]}`},
	{"agents", "create", "acme-bot", "--owner=chubes"},
	{"agents", "create", "chubes-private", "--owner=chubes"},
	{"agents", "create", "carol-bot", "--owner=carol"},
	{"agents", "access", "grant", "chubes-bot", "user:sam", "--role=operator"},
	{"agents", "access", "grant", "chubes-bot", "user:carol", "--role=viewer"},
	{"agents", "access", "grant", "chubes-bot", "audience:public", "--role=viewer"},
	{"agents", "access", "grant", "acme-bot", "audience:acme", "--role=operator"},
	{"agents", "access", "grant", "carol-bot", "acme", "--role=viewer"},
}

// seedWorld creates the cast: through the CLI as the store operator, or as
// a copy of the first world the CLI seeded on this kind of store
// (world_template_test.go).
func seedWorld(t *testing.T, dbURL string) world {
	t.Helper()
	if !cloneWorld(t, dbURL) {
		seedSteps(t, dbURL)
	}
	return world{db: dbURL, agents: worldAgents}
}

// mintCLI issues a token through the CLI; extra flags as for `token create`.
func mintCLI(t *testing.T, dbURL, agent string, flags ...string) createdToken {
	t.Helper()
	var ct createdToken
	cliJSON(t, dbURL, &ct, append([]string{"agents", "token", "create", agent}, flags...)...)
	if ct.Token == "" || ct.ID == 0 {
		t.Fatalf("token create %s: no token in the answer: %+v", agent, ct)
	}
	return ct
}

// tokenCount is the number of tokens the CLI lists for an agent.
func tokenCount(t *testing.T, dbURL, agent string) int {
	t.Helper()
	var ts []createdToken
	cliJSON(t, dbURL, &ts, "agents", "token", "list", agent)
	return len(ts)
}
