// Package sqlite is Warden's embedded default store: one SQLite file (pure Go,
// modernc.org/sqlite) holding the audit log and, as they arrive, task grants,
// approvals, tool pins and token replay records.
//
// Durability: the file runs in WAL mode with synchronous=FULL, so a commit
// returns only after the write-ahead log is fsynced; a record acknowledged to
// the audit log survives a process crash and a power loss, which is what
// lets the gateway forward a call only after its record is written. FULL
// costs one fsync per transaction; the audit log amortises it by group
// commit (many records per transaction), so the stronger setting is kept for
// every table rather than NORMAL, which in WAL mode may lose the last
// commits on power loss.
//
// Schema: each version is one file in migrations/ named NNNN_name.sql,
// applied once in order inside a transaction, with the version kept in
// PRAGMA user_version. Add a table by adding the next file.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/wardenmcp/warden/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// BusyTimeout is how long a statement waits for another connection's write
// lock before failing.
const BusyTimeout = 10 * time.Second

// DB is an open Warden database file. It is safe for concurrent use.
type DB struct {
	sql    *sql.DB
	path   string
	logger *slog.Logger
	audit  *AuditStore
}

// Open opens (creating if missing) the database file at path and brings its
// schema up to date. A file whose schema is newer than this Warden knows is
// refused.
func Open(path string, logger *slog.Logger) (*DB, error) {
	return open(context.Background(), path, logger, migrationFiles, false)
}

// OpenReadOnly opens an existing database file for reading only, as the
// audit commands do: nothing is created or migrated, and a schema older or
// newer than this Warden's is refused.
func OpenReadOnly(path string, logger *slog.Logger) (*DB, error) {
	return open(context.Background(), path, logger, migrationFiles, true)
}

func open(ctx context.Context, path string, logger *slog.Logger, migrationsFS fs.FS, readOnly bool) (*DB, error) {
	if logger == nil {
		return nil, errors.New("open database: nil logger")
	}
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	migrations, err := store.LoadMigrations(migrationsFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", dsn(abs, readOnly))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	d := &DB{sql: db, path: abs, logger: logger}
	d.audit = &AuditStore{db: d}
	if err := d.setUp(ctx, migrations, readOnly); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return d, nil
}

// dsn builds the connection string: a file: URI (so a path holding '?' or
// '#' stays a path) with the settings every pooled connection needs.
func dsn(abs string, readOnly bool) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	// Copy the WAL back into the database every ~40 MB rather than every
	// 4 MB: the copy runs inside a committing writer, and pages rewritten
	// by many small commits are copied once.
	q.Add("_pragma", "wal_autocheckpoint(10000)")
	// Writers take the lock when the transaction begins, so two writers
	// queue on the busy timeout instead of failing on a lock upgrade.
	q.Set("_txlock", "immediate")
	if readOnly {
		q.Set("mode", "ro")
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	return u.String() + "?" + q.Encode()
}

func (d *DB) setUp(ctx context.Context, migrations []store.Migration, readOnly bool) error {
	var mode string
	if err := d.sql.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		d.logger.Warn("database is not in WAL mode; writes will block readers", "path", d.path, "journal_mode", mode)
	}
	if readOnly {
		v, err := d.SchemaVersion(ctx)
		if err != nil {
			return err
		}
		if v != len(migrations) {
			return fmt.Errorf("schema version %d, this Warden reads version %d: open it once with a matching warden to migrate", v, len(migrations))
		}
		return nil
	}
	return d.migrate(ctx, migrations)
}

// SchemaVersion returns the database's schema version (PRAGMA user_version).
func (d *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := d.sql.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// migrate applies the migrations the file has not seen, each in its own
// immediate transaction, so two processes opening a new file at once apply
// each step exactly once.
func (d *DB) migrate(ctx context.Context, migrations []store.Migration) error {
	for _, m := range migrations {
		applied, err := d.applyMigration(ctx, m, len(migrations))
		if err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
		}
		if applied {
			d.logger.Info("database migrated", "path", d.path, "version", m.Version, "name", m.Name)
		}
	}
	return nil
}

func (d *DB) applyMigration(ctx context.Context, m store.Migration, latest int) (applied bool, err error) {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer func() {
		if !applied {
			tx.Rollback()
		}
	}()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return false, fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case v > latest:
		return false, fmt.Errorf("the database has schema version %d, newer than this Warden's %d", v, latest)
	case v >= m.Version:
		return false, nil
	case v != m.Version-1:
		return false, fmt.Errorf("the database has schema version %d, expected %d", v, m.Version-1)
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, err
	}
	// PRAGMA takes no parameters; the version is an int from a file name.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.Version)); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	return true, nil
}

// Close closes the database. Calls after Close fail.
func (d *DB) Close() error {
	if err := d.sql.Close(); err != nil {
		return fmt.Errorf("close database %s: %w", d.path, err)
	}
	return nil
}
