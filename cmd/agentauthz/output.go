package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
)

// printJSON writes v as indented JSON (the seed's field names).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows as aligned text columns.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func ts(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func capsText(c *[]string) string {
	if c == nil {
		return "(owner ceiling)"
	}
	if len(*c) == 0 {
		return "(none)"
	}
	return strings.Join(*c, ",")
}

func toolPolicyText(tp *model.ToolPolicy) string {
	if tp == nil {
		return "(all tools)"
	}
	return tp.Mode + ":" + strings.Join(tp.Tools, ",")
}

func tokenRows(toks []model.Token) [][]string {
	rows := make([][]string, len(toks))
	for i, t := range toks {
		state := "active"
		if t.RevokedAt != nil {
			state = "revoked " + ts(t.RevokedAt)
		}
		rows[i] = []string{itoa(t.ID), t.Prefix, t.Label, capsText(t.Capabilities), ts(t.ExpiresAt), ts(t.LastUsedAt), ts(&t.CreatedAt), state}
	}
	return rows
}

var tokenHeader = []string{"TOKEN_ID", "TOKEN_PREFIX", "LABEL", "CAPABILITIES", "EXPIRES_AT", "LAST_USED_AT", "CREATED_AT", "STATE"}

func agentRow(a model.Agent, role string) []string {
	r := []string{itoa(a.ID), a.Slug, a.Name, itoa(a.OwnerID), a.Status, toolPolicyText(a.ToolPolicy)}
	if role != "" {
		r = append(r, role)
	}
	return r
}

var agentHeader = []string{"AGENT_ID", "SLUG", "NAME", "OWNER_ID", "STATUS", "TOOL_POLICY"}

func itoa(n int64) string { return fmt.Sprint(n) }
