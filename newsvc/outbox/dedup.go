package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ficus-gw/ficus/internal/sqlitedb"
)

// DedupMigration creates processed_events, the consumer side of
// at-least-once delivery. A consuming service appends it to its own
// migration list (independently of Migration, which only producers need).
var DedupMigration = sqlitedb.Migration{
	Name: "outbox: processed events for consumer-side deduplication",
	SQL: `CREATE TABLE processed_events (
	event_id     TEXT PRIMARY KEY,
	processed_at TEXT NOT NULL
);`,
}

// Dedup records which events a consumer has processed. Its zero value is
// ready to use and stamps records with time.Now.
type Dedup struct {
	// Now stamps processed_at (kept for pruning and forensics). nil means
	// time.Now.
	Now func() time.Time
}

// Seen marks eventID as processed inside the consumer's transaction tx and
// reports whether it had already been processed. Call it first in the
// transaction that applies the event; when it returns true, commit without
// applying anything. Because the mark is written in the same transaction as
// the effect, a rollback forgets both, and a redelivery is applied once.
func (d Dedup) Seen(ctx context.Context, tx *sql.Tx, eventID string) (bool, error) {
	if eventID == "" {
		return false, fmt.Errorf("%w: empty eventId", ErrInvalidEnvelope)
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO processed_events(event_id, processed_at) VALUES (?, ?)
		ON CONFLICT(event_id) DO NOTHING`, eventID, now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return false, fmt.Errorf("recording event %s as processed: %w", eventID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("recording event %s as processed: %w", eventID, err)
	}
	return n == 0, nil
}

// Seen is Dedup{}.Seen: it marks eventID as processed in tx and reports
// whether it already was.
func Seen(ctx context.Context, tx *sql.Tx, eventID string) (bool, error) {
	return Dedup{}.Seen(ctx, tx, eventID)
}
