// Package testpg starts real PostgreSQL servers for tests.
//
// A server is initialized with initdb into a fresh temporary directory,
// listens on 127.0.0.1 on a free port (its unix socket lives in the same
// directory), runs with fsync off, trusts local connections and is stopped
// when the test ends. The binaries come from Debian's postgresql package
// (PostgreSQL 15, /usr/lib/postgresql/15/bin); the environment variable
// WARDEN_TEST_PG_BIN names another directory. When the binaries are missing
// the test is skipped.
//
// Starting PostgreSQL costs a second or two, so a test binary normally shares
// one server: its TestMain calls [Main], and tests call [Shared] and give each
// test its own database with [Server.NewDatabase]. [Start] gives a test a
// private server instead.
//
// When the tests run as root, initdb runs as the postgres OS user through
// runuser, and the server process is started with that user's credentials.
// The server is a direct child of the test process and receives SIGINT (fast
// shutdown) if the test process dies without cleaning up, so no server
// outlives an interrupted test run.
package testpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultBinDir is where Debian's postgresql package installs PostgreSQL 15.
const DefaultBinDir = "/usr/lib/postgresql/15/bin"

// BinDirEnv names the environment variable that overrides [DefaultBinDir].
const BinDirEnv = "WARDEN_TEST_PG_BIN"

// Superuser is the name of the bootstrap superuser created by initdb.
const Superuser = "postgres"

// readyTimeout bounds how long a new server may take to accept connections.
const readyTimeout = 60 * time.Second

// Server is a running PostgreSQL server owned by a test binary.
type Server struct {
	// Host is the address the server listens on (always 127.0.0.1).
	Host string
	// Port is the TCP port the server listens on.
	Port int
	// Dir is the temporary directory holding the data directory and socket.
	Dir string

	cmd    *exec.Cmd
	exited chan struct{}
	dbSeq  atomic.Int64
	stop   sync.Once
}

// DSN returns a superuser connection string for database db.
func (s *Server) DSN(db string) string {
	return s.UserDSN(Superuser, db)
}

// UserDSN returns a connection string for role user and database db. The
// server trusts local connections, so no password is needed.
func (s *Server) UserDSN(user, db string) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", user, s.Host, s.Port, db)
}

// NewDatabase creates an empty database with a unique name, drops it when
// the test ends, and returns its name.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	name, err := s.CreateDatabase(ctx)
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	t.Cleanup(func() {
		if err := s.superExec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testpg: drop database %s: %v", name, err)
		}
	})
	return name
}

// CreateDatabase creates an empty database with a unique name that lives as
// long as the server, for fixtures shared by several tests.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), s.dbSeq.Add(1))
	if err := s.superExec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return name, nil
}

func (s *Server) superExec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// Stop shuts the server down and removes its directory. It is safe to call
// more than once.
func (s *Server) Stop() error {
	var err error
	s.stop.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			// SIGINT is PostgreSQL's fast shutdown: roll back and exit.
			_ = s.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-s.exited:
			case <-time.After(30 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.exited
			}
		}
		err = os.RemoveAll(s.Dir)
	})
	return err
}

// Start starts a private server for t and stops it when t ends. It skips t
// when the PostgreSQL binaries are not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := binDir()
	if err := checkBinaries(bin); err != nil {
		t.Skip(err.Error())
	}
	s, err := start(bin)
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("testpg: stop: %v", err)
		}
	})
	return s
}

// shared holds the one server a test binary shares between its tests. It is
// package state on purpose: the server must outlive each test and is stopped
// by Main after all tests have run.
var shared struct {
	mu      sync.Mutex
	inMain  bool
	started bool
	server  *Server
	err     error
	skip    error
}

// Main runs the tests of a test binary that uses [Shared], then stops the
// shared server. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testpg.Main(m) }
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()

	code := m.Run()

	shared.mu.Lock()
	if shared.server != nil {
		if err := shared.server.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testpg: stop shared server: %v\n", err)
		}
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// Shared returns the server shared by all tests of this test binary, starting
// it on first use. The test binary's TestMain must call [Main], which stops
// the server. It skips t when the PostgreSQL binaries are not installed.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		t.Fatal("testpg: Shared needs the test binary's TestMain to call testpg.Main(m)")
	}
	if !shared.started {
		shared.started = true
		bin := binDir()
		if err := checkBinaries(bin); err != nil {
			shared.skip = err
		} else {
			shared.server, shared.err = start(bin)
		}
	}
	switch {
	case shared.skip != nil:
		t.Skip(shared.skip.Error())
	case shared.err != nil:
		t.Fatalf("testpg: shared server: %v", shared.err)
	}
	return shared.server
}

func binDir() string {
	if d := os.Getenv(BinDirEnv); d != "" {
		return d
	}
	return DefaultBinDir
}

func checkBinaries(bin string) error {
	for _, name := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return fmt.Errorf("testpg: PostgreSQL binaries not found in %s (install Debian's postgresql package, PostgreSQL 15, or set %s): %v", bin, BinDirEnv, err)
		}
	}
	return nil
}

// osUser is the account the server runs as: postgres when running as root
// (PostgreSQL refuses to run as root), otherwise the current user.
type osUser struct {
	asPostgres bool
	uid, gid   uint32
}

func serverUser() (osUser, error) {
	if os.Geteuid() != 0 {
		return osUser{}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return osUser{}, fmt.Errorf("running as root needs the postgres OS user: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return osUser{}, fmt.Errorf("postgres uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return osUser{}, fmt.Errorf("postgres gid %q: %w", u.Gid, err)
	}
	return osUser{asPostgres: true, uid: uint32(uid), gid: uint32(gid)}, nil
}

func start(bin string) (*Server, error) {
	who, err := serverUser()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "testpg-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	fail := func(err error) (*Server, error) {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if who.asPostgres {
		if err := os.Chown(dir, int(who.uid), int(who.gid)); err != nil {
			return fail(fmt.Errorf("chown %s: %w", dir, err))
		}
	}
	data := filepath.Join(dir, "data")
	initdb := []string{filepath.Join(bin, "initdb"),
		"-D", data, "-U", Superuser, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"}
	if who.asPostgres {
		initdb = append([]string{"runuser", "-u", "postgres", "--"}, initdb...)
	}
	if out, err := exec.Command(initdb[0], initdb[1:]...).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}

	// The port is chosen by the kernel and released just before the server
	// binds it; another process could take it in between, so try again.
	var lastErr error
	for range 3 {
		s, err := launch(bin, dir, data, who)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return fail(lastErr)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func launch(bin, dir, data string, who osUser) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("free port: %w", err)
	}
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	defer logFile.Close()

	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", data,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+dir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=60",
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	if who.asPostgres {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: who.uid, Gid: who.gid}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s := &Server{Host: "127.0.0.1", Port: port, Dir: dir, cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(); err != nil {
		_ = cmd.Process.Kill()
		<-s.exited
		logText, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%w\nserver log:\n%s", err, tail(string(logText), 2000))
	}
	return s, nil
}

// waitReady connects until the server accepts connections, the server
// process exits, or readyTimeout passes.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	backoff := 10 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgconn.Connect(ctx, s.DSN("postgres"))
		cancel()
		if err == nil {
			return conn.Close(context.Background())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not ready after %s: %w", readyTimeout, err)
		}
		select {
		case <-s.exited:
			return errors.New("postgres exited during startup")
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 200*time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// String describes the server for logs.
func (s *Server) String() string {
	return "postgres on " + net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) + " in " + s.Dir
}
