// Command roundtrip drives agentauthz through nothing but the client that
// oapi-codegen generates, with default options, from the served OpenAPI
// document. TestGeneratedClientRoundTrip generates that client beside a
// copy of this file, in package main, and runs it against a live server.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
)

func main() {
	server := flag.String("server", "", "base URL of the server")
	user := flag.String("user", "", "login the trusted proxy header asserts")
	flag.Parse()
	out, err := run(context.Background(), *server, *user)
	if err != nil {
		fmt.Fprintln(os.Stderr, "roundtrip:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

// result is what the test checks again on the server side.
type result struct {
	AgentID int64 `json:"agent_id"`
	TokenID int64 `json:"token_id"`
}

const slug = "roundtrip"

func run(ctx context.Context, server, user string) (result, error) {
	c, err := NewClientWithResponses(server, WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("X-Forwarded-User", user)
		return nil
	}))
	if err != nil {
		return result{}, err
	}

	created, err := c.CreateAgentWithResponse(ctx, CreateAgentRequest{Slug: slug,
		ToolPolicy: &ToolPolicy{Mode: Allow, Tools: []string{"web_search"}}})
	if err := expect(created, err, 201); err != nil {
		return result{}, fmt.Errorf("create agent: %w", err)
	}
	if err := wantPolicy("created", created.JSON201.ToolPolicy, &ToolPolicy{Mode: Allow, Tools: []string{"web_search"}}); err != nil {
		return result{}, err
	}

	// An update without tool_policy (nil **ToolPolicy) keeps it.
	name := "Round trip"
	renamed, err := c.UpdateAgentWithResponse(ctx, slug, UpdateAgentRequest{Name: &name})
	if err := expect(renamed, err, 200); err != nil {
		return result{}, fmt.Errorf("rename agent: %w", err)
	}
	if err := wantPolicy("renamed", renamed.JSON200.ToolPolicy, created.JSON201.ToolPolicy); err != nil {
		return result{}, err
	}

	// tool_policy: null (a pointer to a nil *ToolPolicy) clears it.
	var none *ToolPolicy
	cleared, err := c.UpdateAgentWithResponse(ctx, slug, UpdateAgentRequest{ToolPolicy: &none})
	if err := expect(cleared, err, 200); err != nil {
		return result{}, fmt.Errorf("clear tool policy: %w", err)
	}
	if err := wantPolicy("cleared", cleared.JSON200.ToolPolicy, nil); err != nil {
		return result{}, err
	}
	shown, err := c.ShowAgentWithResponse(ctx, slug)
	if err := expect(shown, err, 200); err != nil {
		return result{}, fmt.Errorf("show agent: %w", err)
	}
	if err := wantPolicy("read back", shown.JSON200.ToolPolicy, nil); err != nil {
		return result{}, err
	}

	label := "roundtrip"
	minted, err := c.CreateAgentTokenWithResponse(ctx, slug, CreateTokenRequest{Label: &label})
	if err := expect(minted, err, 201); err != nil {
		return result{}, fmt.Errorf("mint token: %w", err)
	}
	if minted.JSON201.Token == "" {
		return result{}, errors.New("mint token: no raw token in the answer")
	}
	listed, err := c.ListAgentTokensWithResponse(ctx, slug)
	if err := expect(listed, err, 200); err != nil {
		return result{}, fmt.Errorf("list tokens: %w", err)
	}
	id := minted.JSON201.TokenId
	if !slices.ContainsFunc(listed.JSON200.Tokens, func(t Token) bool { return t.TokenId == id && t.Label == label }) {
		return result{}, fmt.Errorf("list tokens: token %d labelled %q missing from %+v", id, label, listed.JSON200.Tokens)
	}
	return result{AgentID: shown.JSON200.AgentId, TokenID: id}, nil
}

// response is what every generated *Response has.
type response interface{ StatusCode() int }

// expect reports a transport error or an answer other than status.
func expect(r response, err error, status int) error {
	if err != nil {
		return err
	}
	if got := r.StatusCode(); got != status {
		return fmt.Errorf("status %d; want %d", got, status)
	}
	return nil
}

func wantPolicy(step string, got, want *ToolPolicy) error {
	if (got == nil) != (want == nil) || got != nil && (got.Mode != want.Mode || !slices.Equal(got.Tools, want.Tools)) {
		return fmt.Errorf("%s: tool policy %+v; want %+v", step, got, want)
	}
	return nil
}
