package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/view"
)

func (a *app) policyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Inspect and check policy bundles"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Load, compile, validate and run the decision cases of the policy bundle (--policy-bundle, or the embedded default) as the server would",
		Long: `Load, compile and validate the policy bundle (--policy-bundle, or the embedded
default) exactly as the server activates one, including its decision cases: the
bundle's own data.agentauthz.cases must decide as expected, or, when it ships
none, the default bundle's case inputs must decide without error. A bundle
that fails is reported with the failing case and error, and the command exits 1.`,
		Args: exactArgs(0, "(none)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			eng, err := policy.New(cmd.Context(), policy.Options{BundlePath: a.policyBundle, Logger: a.quietLogger()})
			if err != nil {
				return err
			}
			act := eng.Activation()
			if a.format == "json" {
				return printJSON(a.stdout, map[string]any{
					"source": act.Source, "revision": act.Revision, "deterministic": act.Deterministic,
					"agent_roles": act.AgentRoles, "user_roles": act.UserRoles, "abilities": act.Abilities, "actions": act.Actions,
					"decision_cases": act.Cases, "cases_from_bundle": act.CasesFromBundle,
				})
			}
			roles := make([]string, 0, len(act.AgentRoles))
			for r, rank := range act.AgentRoles {
				roles = append(roles, fmt.Sprintf("%s=%d", r, rank))
			}
			sort.Strings(roles)
			fmt.Fprintf(a.stdout, "ok: %s (revision %s)\n  agent roles: %s\n  user roles: %s\n  abilities: %d, actions: %s\n  deterministic: %t (decision memo %s)\n",
				act.Source, act.Revision, strings.Join(roles, " "), strings.Join(act.UserRoles, " "),
				len(act.Abilities), strings.Join(act.Actions, " "), act.Deterministic, map[bool]string{true: "on", false: "off"}[act.Deterministic])
			if act.CasesFromBundle {
				fmt.Fprintf(a.stdout, "  decision cases: %d passed (the bundle's own)\n", act.Cases)
			} else {
				fmt.Fprintf(a.stdout, "  decision cases: none in the bundle; the default's %d inputs decided without error\n", act.Cases)
			}
			return nil
		},
	})
	return cmd
}

func (a *app) authorizeCommand() *cobra.Command {
	var action, tool, agent string
	var explain bool
	cmd := &cobra.Command{
		Use:   "authorize --as <principal> --agent <agent> --action <action> [--tool <tool>] [--explain]",
		Short: "Ask the runtime decision POST /v1/authorize answers, optionally with the policy's trace",
		Args:  exactArgs(0, "(none)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, p, err := a.service(cmd)
			if err != nil {
				return err
			}
			req := authz.AuthorizeRequest{Action: action, Agent: agent}
			if cmd.Flags().Changed("tool") {
				req.Tool = &tool
			}
			var res authz.AuthorizeResult
			var trace []string
			if explain {
				res, trace, err = svc.ExplainAuthorize(cmd.Context(), p, req)
			} else {
				res, err = svc.Authorize(cmd.Context(), p, req)
			}
			if err != nil {
				return err
			}
			if a.format == "json" {
				d := view.DecisionOf(res.Allow, res.DeniedBy, res.Reasons, res.DecisionID, res.AgentID)
				if !explain {
					return printJSON(a.stdout, d)
				}
				return printJSON(a.stdout, struct {
					view.Decision
					Explanation []string `json:"explanation"`
				}{d, trace})
			}
			fmt.Fprintf(a.stdout, "allow=%t denied_by=%v\n", res.Allow, res.DeniedBy)
			for _, r := range res.Reasons {
				fmt.Fprintf(a.stdout, "  - %s\n", r)
			}
			if explain {
				fmt.Fprintln(a.stdout, "\nexplanation:")
				for _, l := range trace {
					fmt.Fprintln(a.stdout, l)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&action, "action", "", "runtime action, e.g. use_tools")
	cmd.Flags().StringVar(&tool, "tool", "", "tool the action uses, e.g. web_search")
	cmd.Flags().StringVar(&agent, "agent", "", "agent (slug or id) the caller acts on")
	cmd.Flags().BoolVar(&explain, "explain", false, "print the policy's evaluation trace")
	return cmd
}
