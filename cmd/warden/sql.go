package main

import (
	"github.com/spf13/cobra"

	"github.com/wardenmcp/warden/internal/classify/sqlclass"
)

// newSQLCmd returns "warden sql", the SQL classifier's commands.
func newSQLCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sql",
		Short: "Inspect SQL the way policy sees it",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "classify",
		Short: "Classify SQL read from standard input",
		Long: `Classify reads PostgreSQL text (one or more statements) from standard input
and prints what the policy function sql(text) sees, as one JSON object:
statement kinds, whether anything writes, changes schema, privileges or
settings, controls the transaction, locks, runs code, touches server files
or other connections, the tables and functions used, and read_only with the
reasons when it is false.

Exit status is 0 when the text was classified, whatever the verdict, and 1
when input could not be read or output not written.`,
		Example: `  echo "SELECT count(*) FROM accounts" | warden sql classify
  warden sql classify < migration.sql`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sqlclass.ClassifyJSON(cmd.InOrStdin(), cmd.OutOrStdout())
		},
	})
	return cmd
}
