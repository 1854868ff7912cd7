// Command gen writes builtins.txt, the SQL classifier's allow-list of
// PostgreSQL built-in functions and operators, from a real pg_catalog.
//
// It starts a throwaway cluster with the PostgreSQL binaries in -pgbin (as the
// postgres user when run as root), listening on 127.0.0.1 only, reads
// pg_proc and pg_operator, and removes the cluster. With -dsn it reads an
// existing server instead.
//
// A function is allow-listed (class read) when every pg_catalog overload of
// its name is immutable or stable, or when it is volatile but was reviewed
// as free of side effects (reviewedVolatile); in both cases only if no
// side-effect pattern (sideEffects) matches it. A function a pattern matches
// is listed with the pattern's class instead. The patterns are written to
// the file too, so the classifier flags the same names in any schema.
//
// Usage (from internal/classify/sqlclass): go generate
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// sideEffect is a reviewed name pattern (path.Match syntax) and the class of
// side effect a function matching it has. The first match wins.
type sideEffect struct {
	pattern string
	class   string
	why     string
}

// sideEffects lists functions that must never count as read-only, whatever
// their volatility marking says. Classes: writes, settings, locks, files,
// connections, code, sleep. "sleep" changes no data but is not read-only
// either: the classifier reports it as delays.
var sideEffects = []sideEffect{
	{"nextval", "writes", "advances a sequence"},
	{"setval", "writes", "sets a sequence"},
	{"txid_current", "writes", "assigns a transaction id"},
	{"pg_current_xact_id", "writes", "assigns a transaction id"},
	{"pg_notify", "writes", "sends a notification (refused in read-only transactions)"},
	{"pg_logical_emit_message", "writes", "writes WAL"},
	{"pg_import_system_collations", "writes", "creates collations"},
	{"pg_create_restore_point", "settings", "server control"},
	{"pg_create_*", "writes", "creates replication slots"},
	{"pg_drop_*", "writes", "drops replication slots"},
	{"pg_copy_*", "writes", "copies replication slots"},
	{"pg_replication_*", "writes", "replication origins and slots"},
	{"pg_logical_*", "writes", "consumes logical replication slots"},
	{"pg_stat_reset*", "writes", "resets statistics"},
	{"pg_nextoid", "writes", "consumes an OID"},
	{"binary_upgrade_*", "writes", "upgrade internals"},
	{"brin_summarize*", "writes", "changes an index"},
	{"brin_desummarize*", "writes", "changes an index"},
	{"gin_clean_pending_list", "writes", "changes an index"},
	{"pg_extension_config_dump", "writes", "changes extension configuration"},
	{"pg_stop_making_pinned_objects", "writes", "initdb internals"},
	{"set_config", "settings", "changes a setting"},
	{"setseed", "settings", "changes the session's random seed"},
	{"pg_reload_conf", "settings", "reloads server configuration"},
	{"pg_rotate_logfile*", "settings", "server control"},
	{"pg_switch_wal", "settings", "server control"},
	{"pg_promote", "settings", "server control"},
	{"pg_backup_*", "settings", "server control"},
	{"pg_start_backup", "settings", "server control"},
	{"pg_stop_backup", "settings", "server control"},
	{"pg_wal_replay_*", "settings", "server control"},
	{"pg_log_backend_memory_contexts", "settings", "server control"},
	{"pg_stat_clear_snapshot", "settings", "changes session state"},
	{"pg_stat_force_next_flush", "settings", "changes session state"},
	{"pg_export_snapshot", "settings", "changes session state"},
	{"pg_advisory_*", "locks", "takes or releases advisory locks"},
	{"pg_try_advisory_*", "locks", "takes advisory locks"},
	{"pg_read_file*", "files", "reads server files"},
	{"pg_read_binary_file*", "files", "reads server files"},
	{"pg_ls_*", "files", "lists server directories"},
	{"pg_stat_file", "files", "inspects server files"},
	{"pg_file_*", "files", "writes server files"},
	{"pg_logdir_ls", "files", "lists server directories"},
	{"pg_current_logfile", "files", "names server files"},
	{"pg_show_all_file_settings", "files", "reads server configuration files"},
	{"pg_hba_file_rules", "files", "reads server configuration files"},
	{"pg_ident_file_mappings", "files", "reads server configuration files"},
	{"lo_*", "files", "large objects, import and export of server files"},
	{"loread", "files", "large objects"},
	{"lowrite", "files", "large objects"},
	{"dblink*", "connections", "opens other connections"},
	{"postgres_fdw_*", "connections", "manages foreign connections"},
	{"pg_terminate_backend", "connections", "terminates other sessions"},
	{"pg_cancel_backend", "connections", "cancels other sessions' queries"},
	{"query_to_xml*", "code", "executes query text"},
	{"cursor_to_xml*", "code", "reads a cursor"},
	{"table_to_xml*", "code", "reads a table named by a string"},
	{"schema_to_xml*", "code", "reads every table of a schema"},
	{"database_to_xml*", "code", "reads every table of the database"},
	{"ts_stat", "code", "executes query text"},
	{"ts_rewrite", "code", "executes query text"},
	{"plpgsql_*", "code", "procedural language internals"},
	{"fmgr_*_validator", "code", "loads a function's library or compiles its body"},
	{"domain_in", "code", "runs the input, and any domain CHECK, of a type named at run time"},
	{"array_in", "code", "runs the input, and any domain CHECK, of a type named at run time"},
	{"record_in", "code", "runs the input, and any domain CHECK, of a type named at run time"},
	{"pg_sleep", "sleep", "delays the session"},
	{"pg_sleep_for", "sleep", "delays the session"},
	{"pg_sleep_until", "sleep", "delays the session"},
}

// laterBuiltins are read-only functions that PostgreSQL 16 and 17 added to
// pg_catalog, reviewed by hand so that a list generated from an older
// catalog still knows them: immutable or stable there, or (array_sample,
// array_shuffle, random_normal) volatile only for their randomness. Not
// pg_input_is_valid or pg_input_error_info: they run the input of a type
// named at run time, and a domain's CHECK with it.
var laterBuiltins = []string{
	"any_value", "array_sample", "array_shuffle", "date_add", "date_subtract", "erf", "erfc",
	"random_normal", "system_user", "to_bin", "to_oct", "uuid_extract_timestamp", "uuid_extract_version",
}

// reviewedVolatile are volatile built-ins reviewed as free of side effects:
// their results change between calls (time, randomness, physical sizes,
// monitoring state) but calling them changes nothing.
var reviewedVolatile = []string{
	"clock_timestamp", "timeofday", "random", "gen_random_uuid",
	"currval", "lastval", "current_query",
	"pg_relation_size", "pg_table_size", "pg_total_relation_size",
	"pg_indexes_size", "pg_database_size", "pg_tablespace_size",
	"pg_is_in_recovery", "pg_is_wal_replay_paused", "pg_get_wal_replay_pause_state",
	"pg_current_wal_lsn", "pg_current_wal_flush_lsn", "pg_current_wal_insert_lsn",
	"pg_last_wal_receive_lsn", "pg_last_wal_replay_lsn", "pg_last_xact_replay_timestamp",
	"pg_partition_tree", "pg_partition_ancestors",
	"pg_blocking_pids", "pg_safe_snapshot_blocking_pids", "pg_lock_status",
	"pg_jit_available", "txid_status", "pg_xact_status",
	"pg_notification_queue_usage", "pg_sequence_last_value",
	"pg_collation_actual_version", "pg_database_collation_actual_version",
	"pg_xact_commit_timestamp", "pg_xact_commit_timestamp_origin", "pg_last_committed_xact",
	"pg_control_checkpoint", "pg_control_init", "pg_control_recovery", "pg_control_system",
	"pg_stat_have_stats", "pg_get_backend_memory_contexts", "pg_get_shmem_allocations",
	"pg_prepared_xact", "pg_get_multixact_members", "pg_stat_get_recovery_prefetch",
	"pg_get_wal_resource_managers",
	"pg_stat_get_xact_blocks_fetched", "pg_stat_get_xact_blocks_hit",
	"pg_stat_get_xact_function_calls", "pg_stat_get_xact_function_self_time",
	"pg_stat_get_xact_function_total_time", "pg_stat_get_xact_numscans",
	"pg_stat_get_xact_tuples_deleted", "pg_stat_get_xact_tuples_fetched",
	"pg_stat_get_xact_tuples_hot_updated", "pg_stat_get_xact_tuples_inserted",
	"pg_stat_get_xact_tuples_returned", "pg_stat_get_xact_tuples_updated",
}

func main() {
	pgbin := flag.String("pgbin", "/usr/lib/postgresql/15/bin", "directory of the PostgreSQL server binaries")
	dsn := flag.String("dsn", "", "read this server instead of starting a throwaway cluster")
	out := flag.String("o", "builtins.txt", "file to write")
	flag.Parse()
	if err := run(*pgbin, *dsn, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(pgbin, dsn, out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if dsn == "" {
		cluster, err := startCluster(ctx, pgbin)
		if err != nil {
			return err
		}
		defer cluster.stop()
		dsn = cluster.dsn
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	text, err := render(ctx, conn)
	if err != nil {
		return err
	}
	return os.WriteFile(out, []byte(text), 0o644)
}

func render(ctx context.Context, conn *pgx.Conn) (string, error) {
	var version string
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&version); err != nil {
		return "", fmt.Errorf("read server version: %w", err)
	}
	// One row per name: the set of volatilities over its overloads.
	// Procedures (prokind 'p') are never allow-listed.
	rows, err := conn.Query(ctx, `
		SELECT proname, string_agg(DISTINCT provolatile::text, '' ORDER BY provolatile::text),
		       bool_or(prokind = 'p')
		FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace
		GROUP BY proname ORDER BY proname COLLATE "C"`)
	if err != nil {
		return "", fmt.Errorf("read pg_proc: %w", err)
	}
	type fn struct {
		name, volatility string
		procedure        bool
	}
	fns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fn, error) {
		var f fn
		err := r.Scan(&f.name, &f.volatility, &f.procedure)
		return f, err
	})
	if err != nil {
		return "", fmt.Errorf("read pg_proc: %w", err)
	}
	rows, err = conn.Query(ctx, `
		SELECT DISTINCT o.oprname FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode
		WHERE o.oprnamespace = 'pg_catalog'::regnamespace
		  AND NOT EXISTS (SELECT 1 FROM pg_operator v JOIN pg_proc vp ON vp.oid = v.oprcode
		                  WHERE v.oprname = o.oprname AND vp.provolatile = 'v')`)
	if err != nil {
		return "", fmt.Errorf("read pg_operator: %w", err)
	}
	ops, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("read pg_operator: %w", err)
	}
	slices.Sort(ops)
	rows, err = conn.Query(ctx, `
		SELECT typname FROM pg_type WHERE typnamespace = 'pg_catalog'::regnamespace AND typtype <> 'd'
		ORDER BY typname COLLATE "C"`)
	if err != nil {
		return "", fmt.Errorf("read pg_type: %w", err)
	}
	types, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("read pg_type: %w", err)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Built-in functions and operators and what calling them does, for the SQL classifier.\n")
	fmt.Fprintf(&b, "# Generated by gen/main.go (go generate) from the pg_catalog of PostgreSQL %s, with the reviewed\n", version)
	fmt.Fprintf(&b, "# read-only functions later versions added (laterBuiltins); do not edit.\n")
	fmt.Fprintf(&b, "# func NAME CLASS: a pg_catalog function. CLASS read: every overload is immutable or stable,\n")
	fmt.Fprintf(&b, "#   or volatile and reviewed side-effect free; any other class (sleep: delays the session)\n")
	fmt.Fprintf(&b, "#   is a reviewed side effect. Functions not listed are not known read-only.\n")
	fmt.Fprintf(&b, "# op SYMBOL: a pg_catalog operator whose functions are not volatile.\n")
	fmt.Fprintf(&b, "# pattern GLOB CLASS: reviewed side effects, applied to a function of that name in any schema.\n")
	fmt.Fprintf(&b, "# type NAME: a pg_catalog type (no domains): its input runs no code but the server's own.\n")
	for _, s := range sideEffects {
		fmt.Fprintf(&b, "pattern %s %s\n", s.pattern, s.class)
	}
	listed := map[string]bool{}
	for _, f := range fns {
		listed[f.name] = true
	}
	for _, name := range laterBuiltins {
		if !listed[name] {
			fns = append(fns, fn{name: name, volatility: "i"})
		}
	}
	slices.SortFunc(fns, func(a, b fn) int { return strings.Compare(a.name, b.name) })
	for _, f := range fns {
		class, ok := allowClass(f.name, f.volatility, f.procedure)
		if ok {
			fmt.Fprintf(&b, "func %s %s\n", f.name, class)
		}
	}
	for _, op := range ops {
		fmt.Fprintf(&b, "op %s\n", op)
	}
	for _, t := range types {
		fmt.Fprintf(&b, "type %s\n", t)
	}
	return b.String(), nil
}

// allowClass says whether a pg_catalog function name is listed, and with
// which class: read, or the class of its reviewed side effect. Volatile
// functions neither reviewed safe nor matched by a pattern are left out,
// and so are unknown to the classifier.
func allowClass(name, volatility string, procedure bool) (string, bool) {
	if procedure {
		return "", false
	}
	for _, s := range sideEffects {
		if ok, _ := path.Match(s.pattern, name); ok {
			return s.class, true
		}
	}
	if strings.Contains(volatility, "v") && !slices.Contains(reviewedVolatile, name) {
		return "", false
	}
	return "read", true
}

type cluster struct {
	dir, pgbin, dsn string
	asPostgres      bool
}

// startCluster initialises and starts a throwaway cluster on a free
// loopback port, with its socket in the cluster's own directory.
func startCluster(ctx context.Context, pgbin string) (*cluster, error) {
	dir, err := os.MkdirTemp("", "sqlclass-gen-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	c := &cluster{dir: dir, pgbin: pgbin, asPostgres: os.Geteuid() == 0}
	if c.asPostgres {
		// initdb refuses to run as root; hand the directory to postgres.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.Join(fmt.Errorf("running as root needs a postgres user: %w", err), os.RemoveAll(dir))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, errors.Join(fmt.Errorf("chown %s: %w", dir, err), os.RemoveAll(dir))
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	data := filepath.Join(dir, "data")
	if err := c.pg(ctx, "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off", port, dir)
	if err := c.pg(ctx, "pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "start"); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	c.dsn = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return c, nil
}

func (c *cluster) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.pg(ctx, "pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop"); err != nil {
		fmt.Fprintln(os.Stderr, "gen: stop cluster:", err)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		fmt.Fprintln(os.Stderr, "gen: remove cluster:", err)
	}
}

func (c *cluster) pg(ctx context.Context, tool string, args ...string) error {
	name := filepath.Join(c.pgbin, tool)
	if c.asPostgres {
		args = append([]string{"-u", "postgres", "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = c.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", tool, err, out)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
