package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/view"
)

func (a *app) usersCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Manage human users (agent owners)"}
	cmd.AddCommand(a.usersCreate(), a.usersList(), a.usersUpdate())
	return cmd
}

// splitRoles accepts repeated --role flags and comma-separated lists.
func splitRoles(in []string) []string {
	var out []string
	for _, r := range in {
		for _, p := range strings.Split(r, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func (a *app) usersCreate() *cobra.Command {
	var name string
	var roles []string
	cmd := &cobra.Command{
		Use:   "create <login> --role=<role>",
		Short: "Create a user",
		Args:  exactArgs(1, "<login>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, p, err := a.service(cmd)
			if err != nil {
				return err
			}
			u, err := svc.CreateUser(cmd.Context(), p, authz.CreateUserRequest{Login: args[0], Name: name, Roles: splitRoles(roles)})
			if err != nil {
				return err
			}
			return a.printUsers([]model.User{u}, true)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "display name (default: the login)")
	cmd.Flags().StringSliceVar(&roles, "role", nil, "role(s) defined by the active policy, e.g. editor (repeatable)")
	return cmd
}

func (a *app) usersList() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  exactArgs(0, "(none)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, p, err := a.service(cmd)
			if err != nil {
				return err
			}
			us, err := svc.ListUsers(cmd.Context(), p)
			if err != nil {
				return err
			}
			return a.printUsers(us, false)
		},
	}
}

func (a *app) usersUpdate() *cobra.Command {
	var name, status string
	var roles []string
	cmd := &cobra.Command{
		Use:   "update <login|id> [--status=active|disabled] [--role=...] [--name=...]",
		Short: "Update a user's name, roles or status",
		Args:  exactArgs(1, "<login|id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, p, err := a.service(cmd)
			if err != nil {
				return err
			}
			var upd authz.UserUpdate
			if cmd.Flags().Changed("name") {
				upd.Name = &name
			}
			if cmd.Flags().Changed("status") {
				upd.Status = &status
			}
			if cmd.Flags().Changed("role") {
				r := splitRoles(roles)
				upd.Roles = &r
			}
			u, err := svc.UpdateUser(cmd.Context(), p, args[0], upd)
			if err != nil {
				return err
			}
			return a.printUsers([]model.User{u}, true)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "display name")
	cmd.Flags().StringVar(&status, "status", "", "active or disabled")
	cmd.Flags().StringSliceVar(&roles, "role", nil, "replace the user's roles (repeatable)")
	return cmd
}

func (a *app) printUsers(us []model.User, one bool) error {
	if a.format == "json" {
		if one {
			return printJSON(a.stdout, view.UserOf(us[0]))
		}
		return printJSON(a.stdout, view.UsersOf(us))
	}
	rows := make([][]string, len(us))
	for i, u := range us {
		rows[i] = []string{itoa(u.ID), u.Login, u.Name, strings.Join(u.Roles, ","), u.Status}
	}
	return table(a.stdout, []string{"USER_ID", "LOGIN", "NAME", "ROLES", "STATUS"}, rows)
}
