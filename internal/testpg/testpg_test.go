package testpg

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestSharedServerAcceptsQueries(t *testing.T) {
	s := Shared(t)
	if s != Shared(t) {
		t.Fatal("Shared returned two different servers")
	}
	db := s.NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DSN(db))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)

	var version, addr, fsync string
	var super bool
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version_num'), inet_server_addr()::text,
		current_setting('fsync'), (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)`).Scan(&version, &addr, &fsync, &super)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	if version < "150000" {
		t.Errorf("server_version_num = %s, want PostgreSQL 15 or later", version)
	}
	if addr != "127.0.0.1/32" {
		t.Errorf("server address = %s, want 127.0.0.1/32", addr)
	}
	if fsync != "off" {
		t.Errorf("fsync = %s, want off", fsync)
	}
	if !super {
		t.Error("DSN does not connect as a superuser")
	}
}

func TestNewDatabaseIsolatesTests(t *testing.T) {
	s := Shared(t)
	a, b := s.NewDatabase(t), s.NewDatabase(t)
	if a == b {
		t.Fatalf("NewDatabase returned %q twice", a)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DSN(a))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE only_in_a (id int)"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	connB, err := pgx.Connect(ctx, s.DSN(b))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer connB.Close(ctx)
	var found bool
	if err := connB.QueryRow(ctx, "SELECT to_regclass('only_in_a') IS NOT NULL").Scan(&found); err != nil {
		t.Fatalf("query: %v", err)
	}
	if found {
		t.Error("a table created in one database is visible in another")
	}
}

func TestStartGivesAPrivateServerAndStopsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second server")
	}
	var s *Server
	t.Run("private", func(t *testing.T) {
		s = Start(t)
		if shared := Shared(t); shared.Port == s.Port {
			t.Fatalf("private server shares port %d with the shared one", s.Port)
		}
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		conn.Close(ctx)
	})
	// The subtest's cleanup stopped the server: nothing listens any more.
	ctx := context.Background()
	if conn, err := pgx.Connect(ctx, s.DSN("postgres")); err == nil {
		conn.Close(ctx)
		t.Fatal("server still accepts connections after its test ended")
	}
}
