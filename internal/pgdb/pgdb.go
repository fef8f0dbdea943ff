// Package pgdb opens the PostgreSQL connection pool that the gateway's
// fleet components share (the control plane today; anything else that
// keeps fleet-wide state in the same database may use it too).
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Open parses dsn (a postgres:// URL or key=value string), opens a pool
// and checks that the server answers within the context's deadline. The
// pool's connections time out after 5 s of trying to connect, so a
// database that goes away later fails calls quickly instead of hanging
// them. Close the pool when done.
func Open(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	pool, err := OpenLazy(dsn)
	if err != nil {
		return nil, err
	}
	cfg := pool.Config()
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to PostgreSQL at %s:%d (database %s): %w",
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return pool, nil
}

// OpenLazy is Open without the check: the pool connects when first used,
// so it can be made while the server is down (a replica starting on its
// cached state).
func OpenLazy(dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The DSN may hold a password: never echo it.
		return nil, ErrMalformedDSN
	}
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > 5*time.Second {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	cfg.HealthCheckPeriod = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("opening the PostgreSQL pool: %w", err)
	}
	return pool, nil
}

// ErrMalformedDSN replaces pgx's parse error, which may quote the DSN
// (and its password).
var ErrMalformedDSN = errors.New("parsing the PostgreSQL DSN: malformed (want postgres://user:password@host:port/db?sslmode=... or key=value pairs)")
