package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/view"
)

func (a *app) agentsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "agents", Short: "Manage agents, their tokens and who may access them"}
	cmd.AddCommand(a.agentsCreate(), a.agentsList(), a.agentsShow(), a.agentsUpdate(), a.agentsDelete(),
		a.tokenCommand(), a.accessCommand())
	return cmd
}

// agentJSON is an agent to print, with the caller's role when known; JSON
// output renders it with view.AgentWithRole, like the API.
type agentJSON struct {
	model.Agent
	Role string
}

// parseToolPolicy reads --tool-policy: a JSON object, or null to clear.
func parseToolPolicy(s string) (tp *model.ToolPolicy, clear bool, err error) {
	if strings.TrimSpace(s) == "null" {
		return nil, true, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var v model.ToolPolicy
	if err := dec.Decode(&v); err != nil {
		return nil, false, &usageError{fmt.Sprintf(`--tool-policy must be a JSON object like {"mode":"allow","tools":["web_search"]} or null: %v`, err)}
	}
	if dec.More() {
		return nil, false, &usageError{"--tool-policy has trailing data after the JSON object"}
	}
	return &v, false, nil
}

func (a *app) agentsCreate() *cobra.Command {
	var owner, name, toolPolicy string
	cmd := &cobra.Command{
		Use:   "create <slug> --owner=<login|id>",
		Short: "Create an agent owned by a user",
		Args:  exactArgs(1, "<slug>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := authz.CreateAgentRequest{Slug: args[0], Name: name, Owner: owner}
			if cmd.Flags().Changed("tool-policy") {
				tp, _, err := parseToolPolicy(toolPolicy)
				if err != nil {
					return err
				}
				req.ToolPolicy = tp
			}
			svc, p, err := a.service(cmd)
			if err != nil {
				return err
			}
			if req.Owner == "" && p.User == nil {
				return &usageError{"--owner is required"}
			}
			ag, err := svc.CreateAgent(cmd.Context(), p, req)
			if err != nil {
				return err
			}
			return a.printAgents([]agentJSON{{Agent: ag}}, true)
		},
	}
	cmd.Flags().StringVar(&owner, "owner", "", "owner login or id (default with --as: that user)")
	cmd.Flags().StringVar(&name, "name", "", "display name (default: the slug)")
	cmd.Flags().StringVar(&toolPolicy, "tool-policy", "", `tool policy JSON, e.g. {"mode":"allow","tools":["web_search"]}`)
	return cmd
}

func (a *app) agentsList() *cobra.Command {
	var minimumRole string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the agents the caller can access (all of them for the operator)",
		Args:  exactArgs(0, "(none)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, p, err := a.service(cmd)
			if err != nil {
				return err
			}
			var out []agentJSON
			page := authz.Page{Limit: 1000}
			for {
				rows, next, err := svc.ListAccessible(cmd.Context(), p, minimumRole, page)
				if err != nil {
					return err
				}
				for _, r := range rows {
					out = append(out, agentJSON{Agent: r.Agent, Role: r.Role})
				}
				if next == 0 {
					break
				}
				page.AfterID = next
			}
			return a.printAgents(out, false)
		},
	}
	cmd.Flags().StringVar(&minimumRole, "minimum-role", "", "only agents on which the caller holds at least this role")
	return cmd
}

func (a *app) agentsShow() *cobra.Command {
	return &cobra.Command{
		Use:   "show <agent>",
		Short: "Show an agent (slug or id)",
		Args:  exactArgs(1, "<agent>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, p, err := a.service(cmd)
			if err != nil {
				return err
			}
			r, err := svc.GetAgent(cmd.Context(), p, args[0])
			if err != nil {
				return err
			}
			return a.printAgents([]agentJSON{{Agent: r.Agent, Role: r.Role}}, true)
		},
	}
}

func (a *app) agentsUpdate() *cobra.Command {
	var name, status, toolPolicy string
	cmd := &cobra.Command{
		Use:   "update <agent> [--status=active|inactive] [--name=...] [--tool-policy=JSON|null]",
		Short: "Update an agent's status, name or tool policy",
		Args:  exactArgs(1, "<agent>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var upd authz.AgentUpdate
			if cmd.Flags().Changed("name") {
				upd.Name = &name
			}
			if cmd.Flags().Changed("status") {
				upd.Status = &status
			}
			if cmd.Flags().Changed("tool-policy") {
				tp, clear, err := parseToolPolicy(toolPolicy)
				if err != nil {
					return err
				}
				upd.ToolPolicy, upd.ClearToolPolicy = tp, clear
			}
			svc, p, err := a.service(cmd)
			if err != nil {
				return err
			}
			ag, err := svc.UpdateAgent(cmd.Context(), p, args[0], upd)
			if err != nil {
				return err
			}
			return a.printAgents([]agentJSON{{Agent: ag}}, true)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "display name")
	cmd.Flags().StringVar(&status, "status", "", "active or inactive")
	cmd.Flags().StringVar(&toolPolicy, "tool-policy", "", "tool policy JSON, or null to allow every tool")
	return cmd
}

func (a *app) agentsDelete() *cobra.Command {
	return &cobra.Command{
		Use:   "delete <agent>",
		Short: "Delete an agent with its tokens and grants",
		Args:  exactArgs(1, "<agent>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, p, err := a.service(cmd)
			if err != nil {
				return err
			}
			if err := svc.DeleteAgent(cmd.Context(), p, args[0]); err != nil {
				return err
			}
			if a.format == "json" {
				return nil // nothing to show, as the API's 204
			}
			fmt.Fprintf(a.stdout, "Deleted agent %s, its tokens and its grants.\n", args[0])
			return nil
		},
	}
}

func (a *app) printAgents(as []agentJSON, one bool) error {
	if a.format == "json" {
		out := make([]view.Agent, len(as))
		for i, x := range as {
			out[i] = view.AgentWithRole(x.Agent, x.Role)
		}
		if one {
			return printJSON(a.stdout, out[0])
		}
		return printJSON(a.stdout, out)
	}
	header := agentHeader
	rows := make([][]string, len(as))
	for i, x := range as {
		rows[i] = agentRow(x.Agent, x.Role)
		if x.Role != "" {
			header = append(agentHeader[:len(agentHeader):len(agentHeader)], "ROLE")
		}
	}
	return table(a.stdout, header, rows)
}
