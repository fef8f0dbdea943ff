package intent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ficus-gw/ficus/internal/sqlitedb"
)

// SQLite is the embedded Ledger: one file, shared safely by every gateway
// process on the host that opens it (WAL, immediate transactions).
type SQLite struct {
	db *sqlitedb.DB
}

var _ Ledger = (*SQLite)(nil)

func migrations() []sqlitedb.Migration {
	return []sqlitedb.Migration{{
		Name: "write intents: key -> side, attempts, attempts proven unsent",
		SQL: `CREATE TABLE intents (
	id         TEXT PRIMARY KEY,
	route      TEXT NOT NULL,
	side       TEXT NOT NULL,
	attempts   INTEGER NOT NULL,
	unsent     INTEGER NOT NULL DEFAULT 0,
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL
);
CREATE INDEX intents_by_age ON intents(first_seen);`,
	}}
}

// OpenSQLite opens (creating and migrating) the ledger file at path.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	db, err := sqlitedb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("intent ledger: %w", err)
	}
	if err := db.Migrate(ctx, migrations()); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("intent ledger: %w", err)
	}
	return &SQLite{db: db}, nil
}

// Close closes the file.
func (s *SQLite) Close() error { return s.db.Close() }

func unavailable(err error) error { return fmt.Errorf("%w: %w", ErrUnavailable, err) }

// Acquire implements Ledger.
func (s *SQLite) Acquire(ctx context.Context, route, key, proposed string, now time.Time) (Claim, error) {
	c := Claim{ID: KeyID(route, key)}
	err := s.db.W.QueryRowContext(ctx, `INSERT INTO intents (id, route, side, attempts, first_seen, last_seen)
		VALUES (?, ?, ?, 1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET attempts = attempts + 1, last_seen = excluded.last_seen
		RETURNING side, attempts`, c.ID, route, proposed, now.UnixMilli(), now.UnixMilli()).Scan(&c.Side, &c.Attempt)
	if err != nil {
		return Claim{}, unavailable(fmt.Errorf("claiming a write intent: %w", err))
	}
	c.First = c.Attempt == 1 && c.Side == proposed
	return c, nil
}

// Unsent implements Ledger.
func (s *SQLite) Unsent(ctx context.Context, c Claim, fallback string, now time.Time) (Outcome, error) {
	out := Kept
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var side string
		var attempts, unsent int64
		err := tx.QueryRowContext(ctx, `SELECT side, attempts, unsent FROM intents WHERE id = ?`, c.ID).Scan(&side, &attempts, &unsent)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // pruned or released meanwhile: nothing holds the key
		}
		if err != nil {
			return err
		}
		if side != c.Side {
			return nil // moved by another attempt; ours went to the old side and did not arrive
		}
		out, err = settleUnsent(ctx, tx, "intents", c.ID, attempts, unsent+1, fallback, now)
		return err
	})
	if err != nil {
		return Kept, unavailable(fmt.Errorf("recording an unsent write attempt: %w", err))
	}
	return out, nil
}

// execer is what both database/sql transactions and the Postgres adapter
// offer for the one statement settleUnsent needs.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// settleUnsent applies the ledger's rule, in table, once a row is locked: if every
// attempt is now proven unsent, the key moves or is released; otherwise the
// unsent count is recorded and the key stays.
func settleUnsent(ctx context.Context, tx execer, table, id string, attempts, unsent int64, fallback string, now time.Time) (Outcome, error) {
	switch {
	case unsent < attempts:
		_, err := tx.ExecContext(ctx, `UPDATE `+table+` SET unsent = ? WHERE id = ?`, unsent, id)
		return Kept, err
	case fallback == "":
		_, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE id = ?`, id)
		return Released, err
	default:
		// The attempt about to go to the fallback side is that side's first.
		_, err := tx.ExecContext(ctx, `UPDATE `+table+` SET side = ?, attempts = 1, unsent = 0, last_seen = ? WHERE id = ?`,
			fallback, now.UnixMilli(), id)
		return Moved, err
	}
}

// Prune implements Ledger.
func (s *SQLite) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.db.W.ExecContext(ctx, `DELETE FROM intents WHERE first_seen < ?`, cutoff.UnixMilli())
	if err != nil {
		return 0, unavailable(fmt.Errorf("pruning write intents: %w", err))
	}
	return res.RowsAffected()
}
