package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Preflight checks that the pool's login role gives the connector least
// privilege and fails closed otherwise: the login role must not be a
// superuser, must not bypass row-level security, must be NOINHERIT, must own
// no relations and hold no privileges on any relation of its own; the read
// role (and the write role, when execute is enabled) must exist, be neither
// superuser nor BYPASSRLS, own no relations, and be granted to the login
// role; and with execute enabled, the write role must not be able to read a
// relation the read role cannot. Run it once before serving.
func Preflight(ctx context.Context, pool *pgxpool.Pool, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("postgres connector config: %w", err)
	}
	cfg = cfg.WithDefaults()
	roles := []string{cfg.ReadRole}
	if cfg.enabled(ToolExecute) {
		roles = append(roles, cfg.WriteRole)
	}

	var login string
	var super, inherit, bypass bool
	var owned, granted int64
	// QueryExecModeExec leaves no prepared statement behind, which matters
	// because the connector resets sessions with DISCARD ALL.
	err := pool.QueryRow(ctx, `SELECT r.rolname, r.rolsuper, r.rolinherit, r.rolbypassrls,
		(SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid),
		(SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a WHERE a.grantee = r.oid)
		FROM pg_roles r WHERE r.rolname = session_user`, pgx.QueryExecModeExec).
		Scan(&login, &super, &inherit, &bypass, &owned, &granted)
	if err != nil {
		return fmt.Errorf("preflight: read the login role: %w", err)
	}
	var errs []error
	if super {
		errs = append(errs, fmt.Errorf("login role %q is a superuser", login))
	}
	if bypass {
		errs = append(errs, fmt.Errorf("login role %q has BYPASSRLS", login))
	}
	if inherit {
		errs = append(errs, fmt.Errorf("login role %q must be NOINHERIT so it has privileges only through SET ROLE", login))
	}
	if owned > 0 {
		errs = append(errs, fmt.Errorf("login role %q owns %d relations", login, owned))
	}
	if granted > 0 {
		errs = append(errs, fmt.Errorf("login role %q holds privileges on %d relations directly; grant them to the read or write role instead", login, granted))
	}
	for _, role := range roles {
		var exists, roleSuper, roleBypass, member bool
		var roleOwned int64
		err := pool.QueryRow(ctx, `SELECT count(*) > 0, coalesce(bool_or(r.rolsuper), false), coalesce(bool_or(r.rolbypassrls), false),
			coalesce(bool_or(pg_has_role(session_user, r.oid, 'MEMBER')), false),
			coalesce(sum((SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid)), 0)::bigint
			FROM pg_roles r WHERE r.rolname = $1`, pgx.QueryExecModeExec, role).
			Scan(&exists, &roleSuper, &roleBypass, &member, &roleOwned)
		if err != nil {
			return fmt.Errorf("preflight: read role %q: %w", role, err)
		}
		switch {
		case !exists:
			errs = append(errs, fmt.Errorf("role %q does not exist (see warden db bootstrap)", role))
			continue
		case roleSuper:
			errs = append(errs, fmt.Errorf("role %q is a superuser", role))
		case roleBypass:
			errs = append(errs, fmt.Errorf("role %q has BYPASSRLS", role))
		case roleOwned > 0:
			errs = append(errs, fmt.Errorf("role %q owns %d relations; owners can alter and drop them", role, roleOwned))
		}
		if !member {
			errs = append(errs, fmt.Errorf("login role %q is not a member of role %q", login, role))
		}
	}
	if cfg.enabled(ToolExecute) && len(errs) == 0 {
		// A query call's statement can switch to any role the login role
		// may take, the write role included (set_config('role', ...) inside
		// the statement). The transaction stays read-only, so the write role
		// must not be able to read anything the read role cannot.
		rows, err := pool.Query(ctx, `SELECT c.oid::regclass::text FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p')
			  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
			  AND has_any_column_privilege($1, c.oid, 'SELECT')
			  AND NOT has_any_column_privilege($2, c.oid, 'SELECT')
			ORDER BY 1`, pgx.QueryExecModeExec, cfg.WriteRole, cfg.ReadRole)
		if err != nil {
			return fmt.Errorf("preflight: compare the read and write roles: %w", err)
		}
		extra, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("preflight: compare the read and write roles: %w", err)
		}
		if len(extra) > 0 {
			errs = append(errs, fmt.Errorf("write role %q can read %v, which read role %q cannot; a read-only call could read them by switching roles", cfg.WriteRole, extra, cfg.ReadRole))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("preflight: the connector would not run with least privilege: %w", errors.Join(errs...))
	}
	return nil
}
