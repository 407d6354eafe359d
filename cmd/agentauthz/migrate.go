package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agentauthz/agentauthz/internal/store"
)

func (a *app) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the embedded schema migrations to the store",
		Args:  exactArgs(0, "(none)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := store.Open(cmd.Context(), a.databaseURL)
			if err != nil {
				return err
			}
			a.st = st
			if err := st.Migrate(cmd.Context()); err != nil {
				return fmt.Errorf("migrate %s: %w", store.RedactURL(a.databaseURL), err)
			}
			fmt.Fprintf(a.stdout, "Store %s is migrated.\n", store.RedactURL(a.databaseURL))
			return nil
		},
	}
}
