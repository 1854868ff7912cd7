package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wardenmcp/warden/internal/testpg"
)

func TestBootstrapScript(t *testing.T) {
	var b strings.Builder
	if err := Bootstrap(&b, BootstrapOptions{ReadTables: []string{"accounts", "orders"}, WriteTables: []string{"orders"}}); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	script := b.String()
	for _, want := range []string{
		`CREATE ROLE "warden_reader" NOLOGIN NOINHERIT NOSUPERUSER`,
		`CREATE ROLE "warden_writer" NOLOGIN NOINHERIT NOSUPERUSER`,
		`CREATE ROLE "warden_connector" LOGIN NOINHERIT NOSUPERUSER`,
		`ALTER ROLE "warden_connector" LOGIN NOINHERIT`,
		`GRANT "warden_reader" TO "warden_connector";`,
		`GRANT "warden_writer" TO "warden_connector";`,
		`GRANT SELECT ON TABLE "public"."accounts", "public"."orders" TO "warden_reader";`,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE "public"."orders" TO "warden_writer";`,
		`REVOKE ALL ON ALL TABLES IN SCHEMA "public" FROM "warden_reader", "warden_writer", "warden_connector";`,
		"BEGIN;", "COMMIT;",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	for _, never := range []string{" SUPERUSER", " BYPASSRLS", " CREATEROLE", " CREATEDB", "WITH GRANT OPTION", "OWNER TO", "PASSWORD"} {
		if strings.Contains(script, never) {
			t.Errorf("script contains %q", never)
		}
	}
}

func TestBootstrapRefusesBadNames(t *testing.T) {
	for name, opts := range map[string]BootstrapOptions{
		"injected table":  {ReadTables: []string{"accounts; DROP TABLE accounts"}},
		"quoted table":    {WriteTables: []string{`a"b`}},
		"upper-case role": {ReadRole: "Reader"},
		"schema with dot": {Schema: "public.x"},
		"same roles":      {ReadRole: "r", WriteRole: "r"},
		"login is reader": {ReadRole: "r", LoginRole: "r"},
		"writes unread":   {ReadTables: []string{"accounts"}, WriteTables: []string{"orders"}},
	} {
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			if err := Bootstrap(&b, opts); err == nil {
				t.Errorf("Bootstrap accepted %+v", opts)
			}
			if b.Len() != 0 {
				t.Errorf("Bootstrap wrote output for bad options:\n%s", b.String())
			}
		})
	}
}

// TestBootstrapConverges: the fixture already applied the script once; a
// second run with fewer tables succeeds and revokes what is no longer listed.
func TestBootstrapConverges(t *testing.T) {
	f := newFixture(t, Config{StatementTimeout: noDeadline})
	grants := func() []string {
		return testpg.Strings(t, f.admin, `SELECT c.relname || ' ' || a.grantee::regrole || ' ' || a.privilege_type
			FROM pg_class c, aclexplode(c.relacl) a
			WHERE c.relnamespace = 'public'::regnamespace AND a.grantee <> c.relowner ORDER BY 1`)
	}
	ctx := context.Background()
	if err := ApplyBootstrap(ctx, f.server.DSN(f.db), f.roles); err != nil {
		t.Fatalf("second bootstrap: %v", err)
	}
	first := grants()
	if len(first) == 0 {
		t.Fatal("no grants after bootstrap")
	}

	narrower := f.roles
	narrower.ReadTables = []string{"accounts"}
	narrower.WriteTables = nil
	if err := ApplyBootstrap(ctx, f.server.DSN(f.db), narrower); err != nil {
		t.Fatalf("narrower bootstrap: %v", err)
	}
	want := []string{"accounts " + f.roles.ReadRole + " SELECT"}
	if diff := cmp.Diff(want, grants()); diff != "" {
		t.Errorf("grants after narrowing (-want +got):\n%s", diff)
	}

	// A role turned superuser makes the script stop before granting anything.
	f.exec(t, "ALTER ROLE "+f.roles.WriteRole+" SUPERUSER")
	err := ApplyBootstrap(ctx, f.server.DSN(f.db), f.roles)
	f.exec(t, "ALTER ROLE "+f.roles.WriteRole+" NOSUPERUSER")
	if err == nil || !strings.Contains(err.Error(), "superuser") {
		t.Errorf("bootstrap with a superuser write role: %v, want a refusal", err)
	}
	if diff := cmp.Diff(want, grants()); diff != "" {
		t.Errorf("grants after a refused bootstrap (-want +got):\n%s", diff)
	}
}

func TestApplyBootstrapDoesNotEchoTheDSN(t *testing.T) {
	dsn := "postgres://admin:hunter2@[bad"
	err := ApplyBootstrap(context.Background(), dsn, BootstrapOptions{})
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "admin") {
		t.Errorf("ApplyBootstrap(bad DSN) = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	if got := (Config{}).WithDefaults().Tools; cmp.Diff([]string{ToolQuery, ToolListTables, ToolDescribeTable}, got) != "" {
		t.Errorf("default tools %v: execute must be opted into", got)
	}
	for name, cfg := range map[string]Config{
		"same roles":       {ReadRole: "x", WriteRole: "x"},
		"bad role":         {ReadRole: `r"; DROP`},
		"unknown tool":     {Tools: []string{"drop_database"}},
		"duplicate tool":   {Tools: []string{ToolQuery, ToolQuery}},
		"negative rows":    {MaxRows: -1},
		"negative bytes":   {MaxResultBytes: -5},
		"sub-ms timeout":   {StatementTimeout: 1},
		"negative timeout": {StatementTimeout: -1},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, cfg)
		}
		if _, err := NewServer(cfg, nil, discardLogger()); err == nil {
			t.Errorf("%s: NewServer accepted %+v", name, cfg)
		}
	}
}

func TestQuoteLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"plain":       "E'plain'",
		"it's":        "E'it''s'",
		`back\slash`:  `E'back\\slash'`,
		`\'; DROP --`: `E'\\''; DROP --'`,
	} {
		if got := quoteLiteral(in); got != want {
			t.Errorf("quoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestBootstrapHardenScopeIsOptIn(t *testing.T) {
	const revoke = "REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC;"
	plain, err := BootstrapSQL(BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hardened, err := BootstrapSQL(BootstrapOptions{HardenScope: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain, revoke) {
		t.Error("plain script changes database-wide privileges")
	}
	for _, want := range []string{revoke, `GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO "warden_connector";`,
		"REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC;"} {
		if !strings.Contains(hardened, want) {
			t.Errorf("hardened script lacks %q", want)
		}
	}
}
