package controlplane

import (
	"context"

	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// notifyChannel is the LISTEN/NOTIFY channel a write announces its new
// state version on.
const notifyChannel = "ficus_controlplane"

// PostgresOptions configure OpenPostgres.
type PostgresOptions struct {
	// Pool is an open pool (see internal/pgdb.Open). The store does not
	// close it.
	Pool *pgxpool.Pool
	// Logger receives connection losses and recoveries. Default: discard.
	Logger *slog.Logger
	// Now stamps changes. Default time.Now.
	Now func() time.Time
	// StartUnreachable opens the store although the database does not
	// answer (a replica starting on its cached state): the tables are
	// assumed to exist from an earlier start, calls fail with
	// ErrUnavailable until the database answers, and the listener
	// reconnects as after any outage.
	StartUnreachable bool
}

// OpenPostgres creates the control plane's tables when missing (safe when
// several replicas start at once) and starts listening for other
// replicas' changes. A database that is down at start is an error: a
// replica must not start without the fleet's state.
func OpenPostgres(ctx context.Context, o PostgresOptions) (Store, error) {
	if o.Pool == nil {
		return nil, errors.New("control plane: PostgresOptions.Pool is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := migratePostgres(ctx, o.Pool); err != nil {
		if !o.StartUnreachable {
			return nil, fmt.Errorf("control plane: %w", err)
		}
		o.Logger.Warn("control plane tables not checked: PostgreSQL unreachable", "err", err)
	}
	db := stdlib.OpenDBFromPool(o.Pool)
	lctx, cancel := context.WithCancel(context.Background())
	l := &listener{pool: o.Pool, log: o.Logger, changed: newNotifier(), done: make(chan struct{})}
	s := &sqlStore{
		d: dialect{
			name: "postgres", dollar: true, lockMeta: " FOR UPDATE",
			afterWrite: `SELECT pg_notify('` + notifyChannel + `', $1)`,
		},
		w: db, r: db, now: o.Now, changed: l.changed,
		listenOK: l.up.Load,
		closeFn: func() error {
			cancel()
			<-l.done
			return db.Close()
		},
	}
	s.connected.Store(true)
	go l.run(lctx)
	return s, nil
}

// pgSchema is applied under an advisory lock so that replicas starting
// together do not race on CREATE TABLE.
const pgSchema = `
CREATE TABLE IF NOT EXISTS ficus_cp_meta (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL);
INSERT INTO ficus_cp_meta (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS ficus_cp_route (
	route          TEXT PRIMARY KEY,
	version        BIGINT NOT NULL,
	updated_ms     BIGINT NOT NULL,
	canary         DOUBLE PRECISION,
	pin            TEXT,
	cohort_percent DOUBLE PRECISION,
	rollout        TEXT
);
CREATE TABLE IF NOT EXISTS ficus_cp_audit (
	id         BIGSERIAL PRIMARY KEY,
	at_ms      BIGINT NOT NULL,
	version    BIGINT NOT NULL,
	actor      TEXT NOT NULL,
	reason     TEXT NOT NULL,
	request_id TEXT NOT NULL,
	route      TEXT NOT NULL,
	field      TEXT NOT NULL,
	old        TEXT NOT NULL,
	new        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ficus_cp_audit_route ON ficus_cp_audit(route, id);
CREATE INDEX IF NOT EXISTS ficus_cp_audit_at ON ficus_cp_audit(at_ms);`

// Advisory lock keys (arbitrary, fixed): schema changes, fleet leadership.
const (
	lockSchema int64 = 0x6669637573_01 // "ficus" 1
	lockLeader int64 = 0x6669637573_02 // "ficus" 2
)

func migratePostgres(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockSchema); err != nil {
			return fmt.Errorf("locking the schema: %w", err)
		}
		if _, err := tx.Exec(ctx, pgSchema); err != nil {
			return fmt.Errorf("creating the control plane tables: %w", err)
		}
		return nil
	})
}

// listener holds one dedicated connection LISTENing for other replicas'
// writes, reconnecting (with back-off) when it breaks. A reconnection is
// itself a change signal: what happened while it was down is unknown.
type listener struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	changed notifier
	up      atomic.Bool
	done    chan struct{}
}

// listenerPing is how long the listener waits for a notification before
// it checks that its connection is alive.
const listenerPing = 2 * time.Second

func (l *listener) run(ctx context.Context) {
	defer close(l.done)
	backoff := 100 * time.Millisecond
	wasDown := false
	for ctx.Err() == nil {
		err := l.listen(ctx, func() {
			backoff = 100 * time.Millisecond
			if wasDown {
				l.log.Info("control plane connection restored")
			}
			wasDown = false
		})
		l.up.Store(false)
		if ctx.Err() != nil {
			return
		}
		if !wasDown {
			l.log.Error("control plane connection lost; routing continues on the last known state", "err", err)
			wasDown = true
		}
		l.changed.signal()
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (l *listener) listen(ctx context.Context, connected func()) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := pgx.ConnectConfig(cctx, l.pool.Config().ConnConfig.Copy())
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	l.up.Store(true)
	connected()
	l.changed.signal() // resynchronise: changes may have been missed
	for {
		wctx, cancel := context.WithTimeout(ctx, listenerPing)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			l.changed.signal()
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) || pgconnTimeout(err):
			pctx, cancel := context.WithTimeout(ctx, listenerPing)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("control plane listener: %w", err)
			}
		default:
			return fmt.Errorf("control plane listener: %w", err)
		}
	}
}

func pgconnTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
