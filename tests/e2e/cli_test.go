package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// walkthroughStep is one `bin/agentauthz ...` line of the README walkthrough.
type walkthroughStep struct {
	line     string
	args     []string
	wantCode int // `|| true` marks a command the README expects to fail (exit 1)
}

// readmeWalkthrough extracts the agentauthz commands of the first sh block
// under "## Walkthrough" in README.md, so the test follows the document.
func readmeWalkthrough(t *testing.T) []walkthroughStep {
	t.Helper()
	f, err := os.Open(filepath.Join(moduleRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []walkthroughStep
	section, block := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "## "):
			section = strings.HasPrefix(line, "## Walkthrough")
		case section && strings.HasPrefix(line, "```"):
			if block {
				return steps // the end of the first block
			}
			block = true
		case block && strings.HasPrefix(line, "bin/agentauthz "):
			words, err := shellWords(line)
			if err != nil {
				t.Fatalf("README line %q: %v", line, err)
			}
			step := walkthroughStep{line: line}
			if n := len(words); n >= 2 && words[n-2] == "||" && words[n-1] == "true" {
				words, step.wantCode = words[:n-2], 1
			}
			step.args = words[1:]
			steps = append(steps, step)
		}
	}
	return steps
}

// shellWords splits a command line the way sh would for the quoting the
// README uses: single quotes, double quotes with \" and \\, and # comments.
func shellWords(line string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
		quote  rune
	)
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch {
			case r == '"':
				quote = 0
			case r == '\\' && i+1 < len(rs) && (rs[i+1] == '"' || rs[i+1] == '\\'):
				i++
				cur.WriteRune(rs[i])
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		case r == '#' && !inWord:
			return words, nil
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, os.ErrInvalid
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func TestCLIReadmeWalkthroughRunsAsDocumented(t *testing.T) {
	t.Parallel()
	steps := readmeWalkthrough(t)
	if len(steps) < 10 {
		t.Fatalf("found %d agentauthz commands in the README walkthrough; has it moved?", len(steps))
	}
	dir := t.TempDir()
	for _, s := range steps {
		cmd := exec.Command(binPath, s.args...)
		cmd.Dir = dir
		cmd.Env = append(cleanEnv(), "AGENTAUTHZ_DATABASE_URL=sqlite:walkthrough.db")
		out, err := cmd.CombinedOutput()
		code := 0
		if exit, ok := err.(*exec.ExitError); ok {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", s.line, err)
		}
		if code != s.wantCode {
			t.Fatalf("%s\nexit %d, want %d; output:\n%s", s.line, code, s.wantCode, out)
		}
	}
	// The walkthrough ends by revoking token 1: it stays listed, revoked.
	var toks []createdToken
	cliJSON(t, "sqlite:"+filepath.Join(dir, "walkthrough.db"), &toks, "agents", "token", "list", "chubes-bot")
	if len(toks) != 2 || toks[0].RevokedAt == nil || toks[1].RevokedAt != nil {
		t.Errorf("after the walkthrough: %+v, want token 1 revoked and token 2 live", toks)
	}
}

// snapshot is everything the CLI lists, to prove a refused command wrote
// nothing.
func snapshot(t *testing.T, db string) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"users", "list"}, {"agents", "list"},
		{"agents", "token", "list", "chubes-bot"}, {"agents", "token", "list", "carol-bot"},
		{"agents", "access", "list", "chubes-bot"}, {"agents", "access", "list", "carol-bot"},
	} {
		r := cli(t, db, append([]string{"--format=json"}, args...)...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		b.WriteString(r.stdout)
	}
	return b.String()
}

func TestCLIRefusesBadInputWithTheRightExitCodeAndChangesNothing(t *testing.T) {
	t.Parallel()
	db := sqliteURL(t)
	seedWorld(t, db)
	carolTok := mintCLI(t, db, "carol-bot")
	before := snapshot(t, db)
	cases := []struct {
		rule string
		args []string
		code int
	}{
		{"a slug outside [a-z0-9_-] is a usage error", []string{"agents", "create", "Bad_Slug", "--owner=chubes"}, 2},
		{"expires-in 0 is a usage error", []string{"agents", "token", "create", "chubes-bot", "--expires-in=0"}, 2},
		{"a negative expires-in is a usage error", []string{"agents", "token", "create", "chubes-bot", "--expires-in=-5"}, 2},
		{"a non-integer expires-in is a usage error", []string{"agents", "token", "create", "chubes-bot", "--expires-in=abc"}, 2},
		{"capabilities that are not a JSON array are a usage error", []string{"agents", "token", "create", "chubes-bot", `--capabilities="x"`}, 2},
		{"an unknown user role is a usage error", []string{"users", "create", "zed", "--role=wizard"}, 2},
		{"an unknown agent role is a usage error", []string{"agents", "access", "grant", "chubes-bot", "user:sam", "--role=owner"}, 2},
		{"a principal of an unknown kind is a usage error", []string{"agents", "access", "grant", "chubes-bot", "robot:x", "--role=viewer"}, 2},
		{"a user principal without a name is a usage error", []string{"agents", "access", "grant", "chubes-bot", "user:", "--role=viewer"}, 2},
		{"an unknown flag is a usage error", []string{"agents", "token", "list", "chubes-bot", "--no-such-flag"}, 2},
		{"an unknown agent is a failure", []string{"agents", "token", "list", "no-such-agent"}, 1},
		{"a duplicate slug is a failure", []string{"agents", "create", "chubes-bot", "--owner=chubes"}, 1},
		{"the owner's implicit access cannot be revoked", []string{"agents", "access", "revoke", "chubes-bot", "user:chubes"}, 1},
		{"a token of another agent cannot be revoked through this one", []string{"agents", "token", "revoke", "chubes-bot", itoa(carolTok.ID)}, 1},
		{"an operator grant cannot create tokens", []string{"--as", "user:sam", "agents", "token", "create", "chubes-bot"}, 1},
	}
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			r := cli(t, db, c.args...)
			if r.code != c.code {
				t.Errorf("agentauthz %s: exit %d, want %d; stderr: %s", strings.Join(c.args, " "), r.code, c.code, r.stderr)
			}
			if !strings.HasPrefix(r.stderr, "Error: ") {
				t.Errorf("stderr %q, want an Error: line", r.stderr)
			}
		})
	}
	if after := snapshot(t, db); after != before {
		t.Errorf("refused commands changed the store:\nbefore: %s\nafter:  %s", before, after)
	}
}

func TestCLIUnreachableDatabaseIsNamedWithoutItsPassword(t *testing.T) {
	t.Parallel()
	r := cli(t, "postgres://u:s3cret@127.0.0.1:1/x", "users", "list")
	if r.code != 1 {
		t.Errorf("exit %d, want 1; stderr: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "127.0.0.1:1/x") || !strings.Contains(r.stderr, "postgres://u") {
		t.Errorf("stderr %q does not name the database", r.stderr)
	}
	if strings.Contains(r.stderr+r.stdout, "s3cret") {
		t.Errorf("the password leaked: %q", r.stderr)
	}
}
