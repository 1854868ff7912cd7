package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DefaultLoginRole is the role the connector's pool logs in as.
const DefaultLoginRole = "warden_connector"

// BootstrapOptions says which roles to create and what they may touch.
// Names are lower-case unquoted identifiers ([a-z_][a-z0-9_]*).
type BootstrapOptions struct {
	// Schema holds the tables. Empty means "public".
	Schema string
	// ReadTables are the tables the read role may SELECT. Empty means every
	// table in Schema that exists when the script runs.
	ReadTables []string
	// WriteTables are the tables the write role may SELECT, INSERT, UPDATE
	// and DELETE. Empty means none. They must be among ReadTables (when that
	// is not empty): the write role may not read more than the read role.
	WriteTables []string
	// HardenScope revokes from PUBLIC, in this database, EXECUTE on
	// set_config, UPDATE on pg_settings and USAGE on the plpgsql language,
	// and grants set_config back to the login role only. Without it a
	// statement can rewrite its own task scope mid-statement (for example
	// set_config('warden.customer_id', ...) followed by query_to_xml), so
	// row-level security on the scope confines only cooperative SQL. It
	// affects every role of the database: other roles that need these must
	// be granted them again.
	HardenScope bool
	// ReadRole, WriteRole and LoginRole name the roles. Empty means
	// warden_reader, warden_writer and warden_connector.
	ReadRole, WriteRole, LoginRole string
}

func (o BootstrapOptions) withDefaults() BootstrapOptions {
	if o.Schema == "" {
		o.Schema = "public"
	}
	if o.ReadRole == "" {
		o.ReadRole = DefaultReadRole
	}
	if o.WriteRole == "" {
		o.WriteRole = DefaultWriteRole
	}
	if o.LoginRole == "" {
		o.LoginRole = DefaultLoginRole
	}
	return o
}

func (o BootstrapOptions) validate() error {
	var errs []error
	check := func(what, name string) {
		if !identifierPattern.MatchString(name) {
			errs = append(errs, fmt.Errorf("%s %q: want a lower-case identifier ([a-z_][a-z0-9_]*)", what, name))
		}
	}
	check("schema", o.Schema)
	check("read role", o.ReadRole)
	check("write role", o.WriteRole)
	check("login role", o.LoginRole)
	for _, t := range o.ReadTables {
		check("read table", t)
	}
	for _, t := range o.WriteTables {
		check("write table", t)
	}
	if len(o.ReadTables) > 0 {
		for _, t := range o.WriteTables {
			if !slices.Contains(o.ReadTables, t) {
				// A read-only call can switch to the write role; its reads
				// must not reach further than the read role's.
				errs = append(errs, fmt.Errorf("write table %q is not among the read tables: the write role must not read more than the read role", t))
			}
		}
	}
	if o.ReadRole == o.WriteRole || o.ReadRole == o.LoginRole || o.WriteRole == o.LoginRole {
		errs = append(errs, fmt.Errorf("read, write and login roles must be three different roles (got %q, %q, %q)", o.ReadRole, o.WriteRole, o.LoginRole))
	}
	return errors.Join(errs...)
}

// Bootstrap writes to w the SQL that creates the connector's least-privilege
// roles: NOLOGIN read and write roles holding only the grants in opts, and a
// NOINHERIT LOGIN role that is a member of both, so it acts only through
// SET ROLE and holds nothing itself. The script runs in one transaction, can
// be run again, and revokes grants in the schema that opts no longer lists.
// It refuses to continue if any of the roles is a superuser or has
// BYPASSRLS or REPLICATION. It sets no password.
func Bootstrap(w io.Writer, opts BootstrapOptions) error {
	script, err := BootstrapSQL(opts)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, script)
	return err
}

// BootstrapSQL returns the script [Bootstrap] writes.
func BootstrapSQL(opts BootstrapOptions) (string, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	id := func(name string) string { return pgx.Identifier{name}.Sanitize() }
	table := func(name string) string { return pgx.Identifier{opts.Schema, name}.Sanitize() }
	tables := func(names []string) string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = table(n)
		}
		return strings.Join(out, ", ")
	}
	reader, writer, login, schema := id(opts.ReadRole), id(opts.WriteRole), id(opts.LoginRole), id(opts.Schema)

	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("-- Least-privilege roles for the Warden PostgreSQL connector.")
	p("-- Safe to run again: it converges the grants in schema %s to the ones below.", schema)
	p("BEGIN;")
	p("")
	p("DO $$")
	p("BEGIN")
	for _, r := range []struct{ name, attrs string }{
		{opts.ReadRole, "NOLOGIN"}, {opts.WriteRole, "NOLOGIN"}, {opts.LoginRole, "LOGIN"},
	} {
		p("  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %s) THEN", quoteLiteral(r.name))
		p("    CREATE ROLE %s %s NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;", id(r.name), r.attrs)
		p("  END IF;")
	}
	p("  IF EXISTS (SELECT FROM pg_roles WHERE rolname IN (%s, %s, %s) AND (rolsuper OR rolbypassrls OR rolreplication)) THEN",
		quoteLiteral(opts.ReadRole), quoteLiteral(opts.WriteRole), quoteLiteral(opts.LoginRole))
	p("    RAISE EXCEPTION 'a Warden connector role is a superuser, bypasses row-level security or has replication rights; remove those attributes first';")
	p("  END IF;")
	p("END")
	p("$$;")
	p("ALTER ROLE %s NOLOGIN NOINHERIT NOCREATEDB NOCREATEROLE;", reader)
	p("ALTER ROLE %s NOLOGIN NOINHERIT NOCREATEDB NOCREATEROLE;", writer)
	p("-- NOINHERIT: the login role holds no privileges until it runs SET ROLE.")
	p("ALTER ROLE %s LOGIN NOINHERIT NOCREATEDB NOCREATEROLE;", login)
	p("GRANT %s TO %s;", reader, login)
	p("GRANT %s TO %s;", writer, login)
	p("")
	p("-- Start from nothing in the schema, so tables no longer listed lose their grants.")
	p("REVOKE ALL ON ALL TABLES IN SCHEMA %s FROM %s, %s, %s;", schema, reader, writer, login)
	p("REVOKE ALL ON ALL SEQUENCES IN SCHEMA %s FROM %s, %s, %s;", schema, reader, writer, login)
	p("REVOKE ALL ON SCHEMA %s FROM %s;", schema, login)
	p("GRANT USAGE ON SCHEMA %s TO %s, %s;", schema, reader, writer)
	if len(opts.ReadTables) == 0 {
		p("GRANT SELECT ON ALL TABLES IN SCHEMA %s TO %s;", schema, reader)
	} else {
		p("GRANT SELECT ON TABLE %s TO %s;", tables(opts.ReadTables), reader)
	}
	if len(opts.WriteTables) > 0 {
		p("GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %s TO %s;", tables(opts.WriteTables), writer)
		regclasses := make([]string, len(opts.WriteTables))
		for i, t := range opts.WriteTables {
			regclasses[i] = quoteLiteral(table(t)) + "::regclass"
		}
		p("-- Inserts need the sequences behind serial and identity columns of the write tables.")
		p("DO $$")
		p("DECLARE seq regclass;")
		p("BEGIN")
		p("  FOR seq IN SELECT DISTINCT d.objid::regclass FROM pg_depend d")
		p("    JOIN pg_class c ON c.oid = d.objid AND c.relkind = 'S'")
		p("    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass")
		p("      AND d.deptype IN ('a', 'i') AND d.refobjid IN (%s)", strings.Join(regclasses, ", "))
		p("  LOOP")
		p("    EXECUTE format('GRANT USAGE ON SEQUENCE %%s TO %%I', seq, %s);", quoteLiteral(opts.WriteRole))
		p("  END LOOP;")
		p("END")
		p("$$;")
	}
	if opts.HardenScope {
		p("")
		p("-- Task scope: only the login role may change settings inside a statement,")
		p("-- so a call's statement cannot rewrite the warden.* settings it runs under.")
		p("REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC;")
		p("GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO %s;", login)
		p("REVOKE UPDATE ON pg_catalog.pg_settings FROM PUBLIC;")
		p("REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC;")
	}
	p("")
	p("COMMIT;")
	p("-- Give %s a way to log in (\\password %s, or certificate authentication);", login, opts.LoginRole)
	p("-- the connector reads its connection string from an environment variable.")
	return b.String(), nil
}

// ApplyBootstrap runs the [Bootstrap] script on the database at dsn. The
// DSN's role needs CREATEROLE and the right to grant on the tables.
func ApplyBootstrap(ctx context.Context, dsn string, opts BootstrapOptions) error {
	script, err := BootstrapSQL(opts)
	if err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The parse error would quote the connection string.
		return errors.New("bootstrap: the DSN is not a valid PostgreSQL connection string")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bootstrap: connect: %w", err)
	}
	defer conn.Close(ctx)
	// The script is several statements: the simple protocol runs them in order.
	if _, err := conn.PgConn().Exec(ctx, script).ReadAll(); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

// quoteLiteral quotes s as an escape-string literal (E'...'), which reads the
// same whatever standard_conforming_strings is. s must not contain NUL.
func quoteLiteral(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `'`, `''`)
	return "E'" + s + "'"
}
