package intent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the fleet's Ledger: every gateway replica, on any host, claims
// keys in the same table, so a retry that reaches another replica still goes
// where its first attempt went.
type Postgres struct {
	pool  *pgxpool.Pool
	ready atomic.Bool // the table is known to exist
}

var _ Ledger = (*Postgres)(nil)

// pgIntentsSchema is created under an advisory lock, so that replicas
// starting together do not race on CREATE TABLE.
const pgIntentsSchema = `
CREATE TABLE IF NOT EXISTS ficus_intents (
	id         TEXT PRIMARY KEY,
	route      TEXT NOT NULL,
	side       TEXT NOT NULL,
	attempts   BIGINT NOT NULL,
	unsent     BIGINT NOT NULL DEFAULT 0,
	first_seen BIGINT NOT NULL,
	last_seen  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS ficus_intents_by_age ON ficus_intents(first_seen);`

// lockIntentsSchema is the advisory lock key of the ledger's schema ("ficus"
// 3; the control plane uses 1 and 2).
const lockIntentsSchema int64 = 0x6669637573_03

// OpenPostgres creates the ledger's table in pool's database when missing.
// The pool stays the caller's: Close does not close it.
func OpenPostgres(ctx context.Context, pool *pgxpool.Pool) (*Postgres, error) {
	p, err := OpenPostgresLazy(pool)
	if err != nil {
		return nil, err
	}
	if err := p.ensure(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// OpenPostgresLazy is OpenPostgres for a database that may not answer yet
// (a replica starting on its cached state): the table is created on first
// use, and until the database answers every call fails with
// ErrUnavailable.
func OpenPostgresLazy(pool *pgxpool.Pool) (*Postgres, error) {
	if pool == nil {
		return nil, errors.New("intent ledger: a PostgreSQL pool is required")
	}
	return &Postgres{pool: pool}, nil
}

// ensure creates the table once.
func (p *Postgres) ensure(ctx context.Context) error {
	if p.ready.Load() {
		return nil
	}
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockIntentsSchema); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, pgIntentsSchema)
		return err
	})
	if err != nil {
		return unavailable(fmt.Errorf("creating its table: %w", err))
	}
	p.ready.Store(true)
	return nil
}

// Close implements Ledger; the pool belongs to the caller.
func (p *Postgres) Close() error { return nil }

// Acquire implements Ledger.
func (p *Postgres) Acquire(ctx context.Context, route, key, proposed string, now time.Time) (Claim, error) {
	if err := p.ensure(ctx); err != nil {
		return Claim{}, err
	}
	c := Claim{ID: KeyID(route, key)}
	err := p.pool.QueryRow(ctx, `INSERT INTO ficus_intents (id, route, side, attempts, first_seen, last_seen)
		VALUES ($1, $2, $3, 1, $4, $4)
		ON CONFLICT (id) DO UPDATE SET attempts = ficus_intents.attempts + 1, last_seen = EXCLUDED.last_seen
		RETURNING side, attempts`, c.ID, route, proposed, now.UnixMilli()).Scan(&c.Side, &c.Attempt)
	if err != nil {
		return Claim{}, unavailable(fmt.Errorf("claiming a write intent: %w", err))
	}
	c.First = c.Attempt == 1 && c.Side == proposed
	return c, nil
}

// Unsent implements Ledger.
func (p *Postgres) Unsent(ctx context.Context, c Claim, fallback string, now time.Time) (Outcome, error) {
	if err := p.ensure(ctx); err != nil {
		return Kept, err
	}
	out := Kept
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		var side string
		var attempts, unsent int64
		err := tx.QueryRow(ctx, `SELECT side, attempts, unsent FROM ficus_intents WHERE id = $1 FOR UPDATE`, c.ID).Scan(&side, &attempts, &unsent)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // pruned or released meanwhile
		}
		if err != nil {
			return err
		}
		if side != c.Side {
			return nil // moved by another attempt
		}
		out, err = settleUnsent(ctx, pgExec{tx}, "ficus_intents", c.ID, attempts, unsent+1, fallback, now)
		return err
	})
	if err != nil {
		return Kept, unavailable(fmt.Errorf("recording an unsent write attempt: %w", err))
	}
	return out, nil
}

// Prune implements Ledger.
func (p *Postgres) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	if err := p.ensure(ctx); err != nil {
		return 0, err
	}
	tag, err := p.pool.Exec(ctx, `DELETE FROM ficus_intents WHERE first_seen < $1`, cutoff.UnixMilli())
	if err != nil {
		return 0, unavailable(fmt.Errorf("pruning write intents: %w", err))
	}
	return tag.RowsAffected(), nil
}

// pgExec adapts a pgx transaction to settleUnsent's execer, rewriting its
// "?" placeholders to PostgreSQL's "$n".
type pgExec struct{ tx pgx.Tx }

func (e pgExec) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	tag, err := e.tx.Exec(ctx, dollars(query), args...)
	if err != nil {
		return nil, err
	}
	return pgResult{tag}, nil
}

type pgResult struct{ tag pgconn.CommandTag }

func (r pgResult) LastInsertId() (int64, error) { return 0, errors.New("not supported") }
func (r pgResult) RowsAffected() (int64, error) { return r.tag.RowsAffected(), nil }

// dollars numbers the "?" placeholders of query as $1, $2, ...
func dollars(query string) string {
	out := make([]byte, 0, len(query)+8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			out = fmt.Appendf(out, "$%d", n)
			continue
		}
		out = append(out, query[i])
	}
	return string(out)
}
