// Package pgtest starts a throwaway PostgreSQL server for tests and demos:
// initdb into a fresh directory, pg_ctl start on a loopback port with
// fsync off, pg_ctl stop at the end. It uses the system's PostgreSQL
// binaries (Debian: /usr/lib/postgresql/<major>/bin). PostgreSQL refuses
// to run as root, so as root the directory is handed to the "postgres"
// user and every command runs through runuser.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ficus-gw/ficus/internal/pgdb"
)

// ErrNoBinaries means no PostgreSQL server binaries were found.
var ErrNoBinaries = errors.New("PostgreSQL binaries (initdb, pg_ctl) not found; install Debian's postgresql package (apt-get install -y postgresql) or set FICUS_PG_BIN")

// Server is one running PostgreSQL.
type Server struct {
	// Dir holds the cluster's data and its Unix socket.
	Dir string
	// Port is the TCP port on 127.0.0.1.
	Port int
	bin  string
	asPG bool // run the binaries as the postgres user (we are root)
}

// FindBin returns the directory holding initdb and pg_ctl: $FICUS_PG_BIN,
// else the newest /usr/lib/postgresql/*/bin, else the one on PATH.
func FindBin() (string, error) {
	ok := func(dir string) bool {
		for _, b := range []string{"initdb", "pg_ctl"} {
			if st, err := os.Stat(filepath.Join(dir, b)); err != nil || st.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("FICUS_PG_BIN"); d != "" {
		if ok(d) {
			return d, nil
		}
		return "", fmt.Errorf("FICUS_PG_BIN=%s: %w", d, ErrNoBinaries)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if ok(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && ok(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", ErrNoBinaries
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start creates a cluster in dir (which must not hold one yet; it is
// created when missing) and starts it on a free loopback port. The
// superuser is "ficus", trusted on loopback. Stop it with Stop.
func Start(ctx context.Context, dir string) (*Server, error) {
	bin, err := FindBin()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", abs, err)
	}
	s := &Server{Dir: abs, bin: bin, asPG: os.Geteuid() == 0}
	if s.asPG {
		if err := chownToPostgres(abs); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(abs, "PG_VERSION")); err != nil {
		if out, err := s.run(ctx, "initdb", "-D", abs, "-A", "trust", "-U", "ficus", "-E", "UTF8", "--no-sync"); err != nil {
			return nil, fmt.Errorf("initdb %s: %w\n%s", abs, err, out)
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s.Port = port
	if err := s.Restart(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Restart starts the server again after Stop (same data, same port).
func (s *Server) Restart(ctx context.Context) error {
	opts := fmt.Sprintf("-k %s -c listen_addresses=127.0.0.1 -p %d -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", s.Dir, s.Port)
	if out, err := s.run(ctx, "pg_ctl", "-D", s.Dir, "-o", opts, "-l", filepath.Join(s.Dir, "server.log"), "-w", "-t", "30", "start"); err != nil {
		return fmt.Errorf("pg_ctl start on port %d: %w\n%s", s.Port, err, out)
	}
	return nil
}

// Stop stops the server (fast shutdown: clients are disconnected). The
// data directory stays; remove it yourself.
func (s *Server) Stop(ctx context.Context) error {
	if out, err := s.run(ctx, "pg_ctl", "-D", s.Dir, "-m", "fast", "-w", "-t", "30", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// DSN returns a connection string for database db ("postgres" always exists).
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://ficus@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// CreateDB creates database name.
func (s *Server) CreateDB(ctx context.Context, name string) error {
	if out, err := s.run(ctx, "createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "ficus", name); err != nil {
		return fmt.Errorf("createdb %s: %w\n%s", name, err, out)
	}
	return nil
}

func (s *Server) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, name)
	var cmd *exec.Cmd
	if s.asPG {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = s.Dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// chownToPostgres hands dir (and the directories above it that the
// postgres user must traverse) to that user.
func chownToPostgres(dir string) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running PostgreSQL as root needs the postgres user (Debian's postgresql package creates it): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", dir, err)
	}
	// Parents created by MkdirTemp are 0700: let others traverse them.
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, st.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("making %s traversable for postgres: %w", p, err)
			}
		}
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// T is the part of testing.TB that New needs.
type T interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

// New starts a server for one test and stops it at cleanup. The test is
// skipped, with a message saying how to install them, only when the
// binaries are absent; any other failure fails it.
func New(t T) *Server {
	t.Helper()
	if _, err := FindBin(); err != nil {
		t.Skipf("skipping: needs a real PostgreSQL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(ctx, filepath.Join(t.TempDir(), "pg"))
	if err != nil {
		t.Fatalf("starting PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Logf("stopping PostgreSQL: %v", err)
		}
	})
	return s
}

// Pool opens a pool on database db (created first unless it is
// "postgres") for one test and closes it at cleanup; every failure fails t.
func (s *Server) Pool(t T, db string) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if db != "postgres" {
		if err := s.CreateDB(ctx, db); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("%v", err)
		}
	}
	pool, err := pgdb.Open(ctx, s.DSN(db))
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
