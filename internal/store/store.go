// Package store holds what Warden's storage back ends share: the versioned
// schema migrations each back end (the embedded SQLite file, PostgreSQL)
// applies at open. The interfaces a part of Warden needs from storage are
// defined by that part (for example audit.Store); the back ends in the
// subdirectories implement them.
package store

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Migration is one step of a back end's schema, applied once, in version order.
type Migration struct {
	// Version is the step's number: 1 for the first, each next one greater by one.
	Version int
	// Name says what the step adds, taken from the file name ("audit").
	Name string
	// SQL is the statements the step runs, in one transaction.
	SQL string
}

// migrationName is NNNN_name.sql: a zero-padded version and a short name.
var migrationName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// LoadMigrations reads the migration files in dir of fsys. Each file is named
// NNNN_name.sql (0001_audit.sql); versions must run 1, 2, 3… without gaps or
// duplicates so that two parts of Warden adding tables at once conflict loudly
// instead of silently skipping one. Files that do not end in .sql are ignored.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %q: name must be NNNN_name.sql", e.Name())
		}
		version, err := strconv.Atoi(m[1])
		if err != nil {
			return nil, fmt.Errorf("migration file %q: %w", e.Name(), err)
		}
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %q: %w", e.Name(), err)
		}
		if strings.TrimSpace(string(body)) == "" {
			return nil, fmt.Errorf("migration file %q is empty", e.Name())
		}
		out = append(out, Migration{Version: version, Name: m[2], SQL: string(body)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %04d_%s: expected version %d (versions must run 1, 2, 3… without gaps or duplicates)", m.Version, m.Name, i+1)
		}
	}
	return out, nil
}
