package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/view"
)

func (a *app) tokenCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Issue, list and revoke an agent's bearer tokens"}
	cmd.AddCommand(a.tokenCreate(), a.tokenList(), a.tokenRevoke())
	return cmd
}

// parseCapabilities reads --capabilities: a JSON array of strings, or null
// for the owner's ceiling.
func parseCapabilities(s string) (*[]string, error) {
	var raw any
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, &usageError{fmt.Sprintf(`--capabilities must be a JSON array of strings like '["datamachine_chat"]': %v`, err)}
	}
	if raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, &usageError{`--capabilities must be a JSON array of strings like '["datamachine_chat"]'`}
	}
	caps := make([]string, len(list))
	for i, v := range list {
		c, ok := v.(string)
		if !ok || c == "" {
			return nil, &usageError{fmt.Sprintf("--capabilities[%d] must be a non-empty string", i)}
		}
		caps[i] = c
	}
	return &caps, nil
}

func (a *app) tokenCreate() *cobra.Command {
	var label, expiresIn, capabilities string
	cmd := &cobra.Command{
		Use:   "create <agent> [--label=...] [--expires-in=SECONDS] [--capabilities='[\"cap\"]']",
		Short: "Issue a token for an agent; the raw token is printed once",
		Args:  exactArgs(1, "<agent>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := authz.CreateTokenRequest{Label: label}
			if cmd.Flags().Changed("expires-in") {
				n, err := strconv.ParseInt(strings.TrimSpace(expiresIn), 10, 64)
				if err != nil {
					return &usageError{fmt.Sprintf("--expires-in must be a whole number of seconds, not %q", expiresIn)}
				}
				req.ExpiresIn = &n
			}
			if cmd.Flags().Changed("capabilities") {
				caps, err := parseCapabilities(capabilities)
				if err != nil {
					return err
				}
				req.Capabilities = caps
			}
			svc, p, err := a.service(cmd)
			if err != nil {
				return err
			}
			ct, err := svc.CreateToken(cmd.Context(), p, args[0], req)
			if err != nil {
				return err
			}
			if a.format == "json" {
				return printJSON(a.stdout, view.CreatedTokenOf(ct.Token, ct.Raw))
			}
			fmt.Fprintf(a.stdout, "Token %d created for agent %s (label %q, capabilities %s, expires %s).\n\n  %s\n\n",
				ct.Token.ID, args[0], ct.Token.Label, capsText(ct.Token.Capabilities), ts(ct.Token.ExpiresAt), ct.Raw)
			fmt.Fprintf(a.stdout, "WARNING: %s Only its hash is stored.\n", view.SaveWarning)
			return nil
		},
	}
	cmd.Flags().StringVar(&label, "label", "", "what the token is for, e.g. kimaki-prod (at most 200 characters)")
	cmd.Flags().StringVar(&expiresIn, "expires-in", "", "lifetime in seconds (default: never expires)")
	cmd.Flags().StringVar(&capabilities, "capabilities", "", `restrict the token to these capabilities, a JSON array (default: the owner's ceiling)`)
	return cmd
}

func (a *app) tokenList() *cobra.Command {
	return &cobra.Command{
		Use:   "list <agent>",
		Short: "List an agent's tokens (metadata only, never the token)",
		Args:  exactArgs(1, "<agent>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, p, err := a.service(cmd)
			if err != nil {
				return err
			}
			toks, err := svc.ListTokens(cmd.Context(), p, args[0])
			if err != nil {
				return err
			}
			if a.format == "json" {
				return printJSON(a.stdout, view.TokensOf(toks))
			}
			return table(a.stdout, tokenHeader, tokenRows(toks))
		},
	}
}

func (a *app) tokenRevoke() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke <agent> <token_id>",
		Short: "Revoke a token immediately",
		Args:  exactArgs(2, "<agent> <token_id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || id <= 0 {
				return &usageError{fmt.Sprintf("token_id must be a positive integer, not %q", args[1])}
			}
			svc, p, err := a.service(cmd)
			if err != nil {
				return err
			}
			t, err := svc.RevokeToken(cmd.Context(), p, args[0], id)
			if err != nil {
				return err
			}
			if a.format == "json" {
				return printJSON(a.stdout, view.TokenOf(t))
			}
			fmt.Fprintf(a.stdout, "Token %d of agent %s revoked at %s.\n", t.ID, args[0], ts(t.RevokedAt))
			return nil
		},
	}
}
