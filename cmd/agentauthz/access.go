package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentauthz/agentauthz/internal/view"
)

func (a *app) accessCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "access", Short: "Grant, revoke, list and check principals' roles on an agent"}
	cmd.AddCommand(a.accessGrant(), a.accessRevoke(), a.accessList(), a.accessCheck())
	return cmd
}

func (a *app) accessGrant() *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:   "grant <agent> <principal> --role=viewer|operator|admin",
		Short: "Give user:<login|id> or audience:<name> (a bare name is an audience) a role on an agent",
		Args:  exactArgs(2, "<agent> <principal>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, p, err := a.service(cmd)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("role") {
				// No default: which role is least privileged is the policy's
				// business, and a grant should name what it gives.
				return &usageError{fmt.Sprintf("--role is required: one of %s (the active policy's agent roles)",
					strings.Join(sortedRoles(a.engine.Activation().AgentRoles), ", "))}
			}
			g, created, err := svc.PutGrant(cmd.Context(), p, args[0], args[1], role)
			if err != nil {
				return err
			}
			if a.format == "json" {
				return printJSON(a.stdout, view.GrantOf(g, false))
			}
			verb := "Updated"
			if created {
				verb = "Granted"
			}
			fmt.Fprintf(a.stdout, "%s: %s is %s on agent %s.\n", verb, g.Principal, g.Role, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "agent role defined by the active policy, e.g. viewer, operator, admin (required)")
	return cmd
}

func (a *app) accessRevoke() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke <agent> <principal>",
		Short: "Remove a principal's grant on an agent",
		Args:  exactArgs(2, "<agent> <principal>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, p, err := a.service(cmd)
			if err != nil {
				return err
			}
			if err := svc.DeleteGrant(cmd.Context(), p, args[0], args[1]); err != nil {
				return err
			}
			if a.format == "json" {
				return nil // nothing to show, as the API's 204
			}
			fmt.Fprintf(a.stdout, "Revoked %s's access to agent %s.\n", args[1], args[0])
			return nil
		},
	}
}

func (a *app) accessList() *cobra.Command {
	return &cobra.Command{
		Use:   "list <agent>",
		Short: "List who holds which role on an agent (the owner's implicit access first)",
		Args:  exactArgs(1, "<agent>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, p, err := a.service(cmd)
			if err != nil {
				return err
			}
			gs, err := svc.ListGrants(cmd.Context(), p, args[0])
			if err != nil {
				return err
			}
			if a.format == "json" {
				out := make([]view.Grant, len(gs))
				for i, g := range gs {
					out[i] = view.GrantOf(g.Grant, g.Implicit)
				}
				return printJSON(a.stdout, out)
			}
			rows := make([][]string, len(gs))
			for i, g := range gs {
				how := "grant"
				if g.Implicit {
					how = "owner (implicit)"
				}
				rows[i] = []string{g.Principal, g.Role, how, ts(&g.GrantedAt)}
			}
			return table(a.stdout, []string{"PRINCIPAL", "ROLE", "VIA", "GRANTED_AT"}, rows)
		},
	}
}

func (a *app) accessCheck() *cobra.Command {
	var minimumRole string
	cmd := &cobra.Command{
		Use:   "check <agent> [--minimum-role=operator]",
		Short: "Answer whether the caller (see --as) can access an agent, and with which role",
		Args:  exactArgs(1, "<agent>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, p, err := a.service(cmd)
			if err != nil {
				return err
			}
			acc, err := svc.CanAccess(cmd.Context(), p, args[0], minimumRole)
			if err != nil {
				return err
			}
			if a.format == "json" {
				return printJSON(a.stdout, view.AccessOf(acc.Allowed, acc.Role, acc.Agent.ID, minimumRole))
			}
			role := acc.Role
			if role == "" {
				role = "-"
			}
			fmt.Fprintf(a.stdout, "allowed=%t role=%s principal=%s agent=%s\n", acc.Allowed, role, p.ID, acc.Agent.Slug)
			return nil
		},
	}
	cmd.Flags().StringVar(&minimumRole, "minimum-role", "", "role the caller must hold at least (default: the lowest)")
	return cmd
}

func sortedRoles(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}
