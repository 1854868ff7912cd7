package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/wardenmcp/warden/connector/postgres"
)

// newDBCmd returns `warden db`, the database set-up commands.
func newDBCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Prepare databases for Warden's built-in connectors",
	}
	cmd.AddCommand(newDBBootstrapCmd())
	return cmd
}

func newDBBootstrapCmd() *cobra.Command {
	var (
		opts   postgres.BootstrapOptions
		apply  bool
		dsnEnv string
	)
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Print (or apply) the SQL that creates the PostgreSQL connector's least-privilege roles",
		Long: `Print the SQL that creates the PostgreSQL connector's roles:

  warden_reader     NOLOGIN, SELECT on --tables (default: every table in --schema)
  warden_writer     NOLOGIN, SELECT/INSERT/UPDATE/DELETE on --write-tables
                    (default: the --tables list; --write-tables "" grants no writes)
  warden_connector  LOGIN NOINHERIT, a member of both and holding nothing itself:
                    it acts only through SET ROLE, one call at a time

The script runs in one transaction and can be run again: grants in the schema
that are no longer listed are revoked. Review it, then run it with psql, or
pass --apply to run it on the database whose connection string is in the
environment variable named by --dsn-env. The DSN is never taken from a flag.
--harden-scope also revokes from PUBLIC, database-wide, EXECUTE on
set_config, UPDATE on pg_settings and USAGE on plpgsql, and grants set_config
to the login role only: without it a statement can rewrite the warden.* task
scope it runs under, and row-level security on the scope holds only against
cooperative SQL. Run it as a superuser.

The script sets no password: give warden_connector one with \password, or use
certificate authentication.

Exit status: 0 on success, 1 on an error.`,
		Example: `  warden db bootstrap --tables accounts,orders --write-tables orders > roles.sql
  WARDEN_ADMIN_DSN=... warden db bootstrap --tables accounts,orders --apply --dsn-env WARDEN_ADMIN_DSN`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("write-tables") {
				opts.WriteTables = opts.ReadTables
			}
			if !apply {
				return postgres.Bootstrap(cmd.OutOrStdout(), opts)
			}
			if dsnEnv == "" {
				return errors.New("--apply needs --dsn-env naming the environment variable that holds the DSN")
			}
			dsn := os.Getenv(dsnEnv)
			if dsn == "" {
				return fmt.Errorf("environment variable %s is empty or unset", dsnEnv)
			}
			if err := postgres.ApplyBootstrap(cmd.Context(), dsn, opts); err != nil {
				return err
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "bootstrap applied")
			return err
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&opts.ReadTables, "tables", nil, "tables the read role may SELECT (comma-separated; default: all tables in the schema)")
	f.StringSliceVar(&opts.WriteTables, "write-tables", nil, "tables the write role may change (default: --tables)")
	f.StringVar(&opts.Schema, "schema", "public", "schema holding the tables")
	f.StringVar(&opts.ReadRole, "read-role", postgres.DefaultReadRole, "name of the read role")
	f.StringVar(&opts.WriteRole, "write-role", postgres.DefaultWriteRole, "name of the write role")
	f.StringVar(&opts.LoginRole, "login-role", postgres.DefaultLoginRole, "name of the login role")
	f.BoolVar(&opts.HardenScope, "harden-scope", false, "revoke set_config, pg_settings updates and plpgsql from PUBLIC so a statement cannot rewrite its task scope (database-wide)")
	f.BoolVar(&apply, "apply", false, "run the script instead of printing it")
	f.StringVar(&dsnEnv, "dsn-env", "", "environment variable holding an administrator's DSN (with --apply)")
	return cmd
}
