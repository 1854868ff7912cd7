package store

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadMigrationsOrdersByVersion(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0002_approvals.sql": {Data: []byte("CREATE TABLE b (x);")},
		"m/0001_audit.sql":     {Data: []byte("CREATE TABLE a (x);")},
		"m/README.md":          {Data: []byte("not a migration")},
	}
	got, err := LoadMigrations(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Version != 1 || got[0].Name != "audit" || got[1].Version != 2 || got[1].Name != "approvals" {
		t.Fatalf("got %+v", got)
	}
	if !strings.Contains(got[1].SQL, "TABLE b") {
		t.Fatalf("migration 2 has the wrong SQL: %q", got[1].SQL)
	}
}

func TestLoadMigrationsRejectsBadSets(t *testing.T) {
	cases := map[string]struct {
		files fstest.MapFS
		want  string
	}{
		"gap": {fstest.MapFS{
			"m/0001_a.sql": {Data: []byte("SELECT 1;")},
			"m/0003_c.sql": {Data: []byte("SELECT 1;")},
		}, "expected version 2"},
		"duplicate": {fstest.MapFS{
			"m/0001_a.sql": {Data: []byte("SELECT 1;")},
			"m/0001_b.sql": {Data: []byte("SELECT 1;")},
		}, "expected version 2"},
		"does not start at one": {fstest.MapFS{
			"m/0002_a.sql": {Data: []byte("SELECT 1;")},
		}, "expected version 1"},
		"bad name": {fstest.MapFS{
			"m/1_a.sql": {Data: []byte("SELECT 1;")},
		}, "NNNN_name.sql"},
		"empty": {fstest.MapFS{
			"m/0001_a.sql": {Data: []byte("  \n")},
		}, "is empty"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := LoadMigrations(tc.files, "m")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
