// Package sqlitedb opens the SQLite files that Ficus's components own and
// applies their versioned schema migrations.
//
// Every component gets two pools on one file: a writer limited to a single
// connection whose transactions start IMMEDIATE (so concurrent writers queue
// on busy_timeout instead of failing with SQLITE_BUSY on lock upgrade), and
// a read-only pool for queries. WAL lets readers run beside the writer.
package sqlitedb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DB is one SQLite file opened as a single-connection writer and a reader pool.
type DB struct {
	// W is the only connection that writes. Begin transactions on it; they
	// take the write lock at BEGIN (_txlock=immediate).
	W *sql.DB
	// R is a read-only pool for queries that do not need to see the writer's
	// open transaction.
	R *sql.DB
	// Path is the file the database lives in.
	Path string
}

// pragmas are set in the DSN so that every pooled connection gets them, not
// only the one an Exec happened to run on.
const pragmas = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"

// Open opens (creating when absent, with its parent directory) the SQLite
// file at path. Close the returned DB when done.
func Open(path string) (*DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating data directory %s: %w", dir, err)
		}
	}
	u := (&url.URL{Scheme: "file", Opaque: path}).String()
	w, err := sql.Open("sqlite", u+"?"+pragmas+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("opening %s for writing: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.Ping(); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", u+"?mode=ro&"+pragmas)
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("opening %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	return &DB{W: w, R: r, Path: path}, nil
}

// Close closes both pools.
func (db *DB) Close() error {
	rerr := db.R.Close()
	werr := db.W.Close()
	if werr != nil {
		return werr
	}
	return rerr
}

// Migration is one step of a component's schema. Steps are applied in order,
// each once, each in its own transaction; never edit a step that has shipped,
// append a new one.
type Migration struct {
	// Name says what the step does; it is recorded beside the version.
	Name string
	// SQL is one or more statements separated by semicolons.
	SQL string
}

// Migrate brings the schema up to date: it applies every step whose version
// (its index + 1) is above the one recorded in schema_migrations.
func (db *DB) Migrate(ctx context.Context, steps []Migration) error {
	if _, err := db.W.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
	)`); err != nil {
		return fmt.Errorf("creating schema_migrations in %s: %w", db.Path, err)
	}
	var current int
	if err := db.W.QueryRowContext(ctx, `SELECT COALESCE(MAX(version),0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("reading schema version of %s: %w", db.Path, err)
	}
	if current > len(steps) {
		return fmt.Errorf("%s has schema version %d but this build knows only %d: run a newer ficus or restore a matching database", db.Path, current, len(steps))
	}
	for i := current; i < len(steps); i++ {
		if err := db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, steps[i].SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name) VALUES (?, ?)`, i+1, steps[i].Name)
			return err
		}); err != nil {
			return fmt.Errorf("migrating %s to version %d (%s): %w", db.Path, i+1, steps[i].Name, err)
		}
	}
	return nil
}

// Tx runs fn in one write transaction: committed when fn returns nil, rolled
// back otherwise (and when fn panics, after which the panic continues).
func (db *DB) Tx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	tx, err := db.W.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}
