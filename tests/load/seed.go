package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/agentauthz/agentauthz/internal/store"
)

// toolPolicy is the seeded agent's tool policy.
const toolPolicy = `{"mode":"allow","tools":["web_search"]}`

// seeded is what the CLI created: enough to call agentauthz and to build
// the identical policy input for OPA.
type seeded struct {
	Token string
	User  struct {
		ID     int64    `json:"user_id"`
		Roles  []string `json:"roles"`
		Status string   `json:"status"`
	}
	Agent struct {
		ID         int64           `json:"agent_id"`
		OwnerID    int64           `json:"owner_id"`
		Status     string          `json:"status"`
		ToolPolicy json.RawMessage `json:"tool_policy"`
	}
	TokenMeta struct {
		ID           int64     `json:"token_id"`
		AgentID      int64     `json:"agent_id"`
		Capabilities *[]string `json:"capabilities"`
	}
}

// seed creates, through the CLI as the store operator, an editor, an agent
// allowed only web_search, and a token with the owner's ceiling.
func seed(ctx context.Context, bin, dbURL string) (seeded, error) {
	var s seeded
	steps := []struct {
		out  any
		args []string
	}{
		{&s.User, []string{"users", "create", "loaduser", "--role=editor"}},
		{&s.Agent, []string{"agents", "create", "load-bot", "--owner=loaduser", "--tool-policy=" + toolPolicy}},
		{&s.TokenMeta, []string{"agents", "token", "create", "load-bot", "--label=load"}},
	}
	for _, st := range steps {
		out, err := runCLI(ctx, bin, dbURL, st.args...)
		if err != nil {
			return s, err
		}
		if err := json.Unmarshal(out, st.out); err != nil {
			return s, fmt.Errorf("agentauthz %s: decoding %q: %w", strings.Join(st.args, " "), out, err)
		}
		if st.out == &s.TokenMeta {
			var raw struct {
				Token string `json:"token"`
			}
			if err := json.Unmarshal(out, &raw); err != nil || raw.Token == "" {
				return s, fmt.Errorf("token create printed no token")
			}
			s.Token = raw.Token
		}
	}
	return s, nil
}

// runCLI runs one CLI command with --format=json (bounded to 60 s).
func runCLI(ctx context.Context, bin, dbURL string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	full := append([]string{"--database-url", dbURL, "--format=json"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = serverEnv("")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("agentauthz %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// opaInput is the input document agentauthz builds for
// POST /v1/authorize {"action":"use_tools","tool":<tool>} with the seeded
// token on its own agent (see internal/authz/input.go and CONTRACT.md).
func (s seeded) opaInput(tool string) map[string]any {
	user := map[string]any{"id": s.User.ID, "roles": s.User.Roles, "status": s.User.Status}
	return map[string]any{
		"ability": "authorize",
		"principal": map[string]any{
			"kind": "token",
			"id":   fmt.Sprintf("token:%d", s.TokenMeta.ID),
			"user": user,
			"token": map[string]any{
				"id": s.TokenMeta.ID, "agent_id": s.TokenMeta.AgentID, "capabilities": s.TokenMeta.Capabilities,
			},
		},
		"agent": map[string]any{
			"id": s.Agent.ID, "owner_id": s.Agent.OwnerID, "status": s.Agent.Status,
			"tool_policy": s.Agent.ToolPolicy, "owner": user,
		},
		"grants": []any{},
		"action": "use_tools",
		"tool":   tool,
	}
}

// pgDatabase is a throwaway PostgreSQL database for the cold path.
type pgDatabase struct {
	admin, url, name string
}

// createPGDatabase finds PostgreSQL the way internal/store/pgtest does
// (DATABASE_URL, else the local default) and creates agentauthz_load_<rand>.
func createPGDatabase(ctx context.Context, admin string) (*pgDatabase, error) {
	if err := pgExec(ctx, admin, "SELECT 1"); err != nil {
		return nil, fmt.Errorf("PostgreSQL at %s does not answer: %w", store.RedactURL(admin), err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "agentauthz_load_" + hex.EncodeToString(b)
	if err := pgExec(ctx, admin, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + name
	return &pgDatabase{admin: admin, url: u.String(), name: name}, nil
}

// drop removes the database (the server using it must be stopped first;
// FORCE ends anything left over).
func (d *pgDatabase) drop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pgExec(ctx, d.admin, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(d.name)+" WITH (FORCE)"); err != nil {
		fmt.Fprintf(os.Stderr, "drop database %s: %v\n", d.name, err)
	}
}

// pgExec runs one statement with a 10 s bound.
func pgExec(ctx context.Context, rawURL, stmt string) error {
	db, err := sql.Open("postgres", rawURL)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = db.ExecContext(ctx, stmt)
	return err
}
