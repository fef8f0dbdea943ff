// Package outbox publishes the new services' domain events with the
// transactional outbox pattern: an event is stored in the same SQLite
// transaction as the state change that caused it, so an event exists if and
// only if the change was committed. Delivery happens afterwards, at least
// once, either pulled by consumers (PullHandler) or pushed to webhooks
// (Dispatcher). Consumers deduplicate by EventID (Seen).
package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ficus-gw/ficus/internal/sqlitedb"
)

// Envelope is the versioned event envelope, the wire format consumers rely
// on. Fields are only ever added; a breaking change to Data for a Type bumps
// SchemaVersion instead of changing the meaning of the old one.
type Envelope struct {
	// Type names the event, "<aggregate>.<past-tense verb>", e.g. "order.created".
	Type string `json:"type"`
	// SchemaVersion is the version of Data's shape for this Type, from 1.
	SchemaVersion int `json:"schemaVersion"`
	// EventID is a UUID, unique per event; consumers dedupe by it because
	// delivery is at least once.
	EventID string `json:"eventId"`
	// OccurredAt is when the state change happened, in UTC (RFC 3339).
	OccurredAt time.Time `json:"occurredAt"`
	// CorrelationID is the request id of the request that started the chain,
	// so logs of every service can be joined on it.
	CorrelationID string `json:"correlationId"`
	// CausationID is the id of the event or command that directly caused
	// this one, empty when a user request did.
	CausationID string `json:"causationId,omitempty"`
	// AggregateID identifies the entity that changed (a SKU, an order id).
	AggregateID string `json:"aggregateId"`
	// Data is the event payload, a JSON document whose shape is fixed by
	// Type and SchemaVersion.
	Data json.RawMessage `json:"data"`
}

// Stored is an Envelope as kept in the outbox, with its position in the log.
type Stored struct {
	// Seq is the event's position in this service's log: strictly
	// increasing in commit order, never reused. Pull consumers remember the
	// last Seq they processed.
	Seq int64 `json:"seq"`
	Envelope
}

// Migration creates the outbox tables; each service appends it to its own
// migration list. outbox_events is the log itself (AUTOINCREMENT so that a
// sequence number is never reused even if old rows are pruned);
// outbox_deliveries remembers how far each webhook subscriber got so that a
// restarted Dispatcher resumes instead of starting over.
var Migration = sqlitedb.Migration{
	Name: "outbox: events log and per-subscriber delivery progress",
	SQL: `CREATE TABLE outbox_events (
	seq            INTEGER PRIMARY KEY AUTOINCREMENT,
	event_id       TEXT NOT NULL UNIQUE,
	type           TEXT NOT NULL,
	schema_version INTEGER NOT NULL,
	occurred_at    TEXT NOT NULL,
	correlation_id TEXT NOT NULL,
	causation_id   TEXT NOT NULL DEFAULT '',
	aggregate_id   TEXT NOT NULL,
	data           TEXT NOT NULL
);
CREATE INDEX outbox_events_aggregate ON outbox_events(aggregate_id, seq);
CREATE TABLE outbox_deliveries (
	subscriber TEXT PRIMARY KEY,
	last_seq   INTEGER NOT NULL,
	updated_at TEXT NOT NULL
);`,
}

// ErrInvalidEnvelope is wrapped by New and Append when an envelope lacks a
// required field; it is a programming error in the producing service.
var ErrInvalidEnvelope = errors.New("invalid event envelope")

// New builds an envelope with a fresh EventID, OccurredAt = now in UTC, and
// data marshalled to JSON. The caller passes now (from its injected clock)
// so that tests control timestamps.
func New(typ string, schemaVersion int, aggregateID, correlationID, causationID string, data any, now time.Time) (Envelope, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, fmt.Errorf("marshalling %s data: %w", typ, err)
	}
	e := Envelope{
		Type:          typ,
		SchemaVersion: schemaVersion,
		EventID:       uuid.NewString(),
		OccurredAt:    now.UTC(),
		CorrelationID: correlationID,
		CausationID:   causationID,
		AggregateID:   aggregateID,
		Data:          raw,
	}
	if err := e.validate(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

func (e Envelope) validate() error {
	switch {
	case e.Type == "":
		return fmt.Errorf("%w: empty type", ErrInvalidEnvelope)
	case e.SchemaVersion < 1:
		return fmt.Errorf("%w: %s has schemaVersion %d, want >= 1", ErrInvalidEnvelope, e.Type, e.SchemaVersion)
	case e.EventID == "":
		return fmt.Errorf("%w: %s has no eventId", ErrInvalidEnvelope, e.Type)
	case e.AggregateID == "":
		return fmt.Errorf("%w: %s has no aggregateId", ErrInvalidEnvelope, e.Type)
	case e.OccurredAt.IsZero():
		return fmt.Errorf("%w: %s has no occurredAt", ErrInvalidEnvelope, e.Type)
	case len(e.Data) == 0 || !json.Valid(e.Data):
		return fmt.Errorf("%w: %s data is not valid JSON", ErrInvalidEnvelope, e.Type)
	}
	return nil
}

// Append stores e in the outbox inside the caller's transaction, the same
// one that writes the state change: if that transaction rolls back, the
// event never existed. Call Dispatcher.Kick after the commit for prompt
// delivery.
func Append(ctx context.Context, tx *sql.Tx, e Envelope) error {
	if err := e.validate(); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox_events
		(event_id, type, schema_version, occurred_at, correlation_id, causation_id, aggregate_id, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		e.EventID, e.Type, e.SchemaVersion, e.OccurredAt.UTC().Format(time.RFC3339Nano),
		e.CorrelationID, e.CausationID, e.AggregateID, string(e.Data))
	if err != nil {
		return fmt.Errorf("appending %s %s to the outbox: %w", e.Type, e.EventID, err)
	}
	return nil
}

// MaxPageSize bounds limit in Events and PullHandler so one request cannot
// load the whole log into memory.
const MaxPageSize = 1000

// Events returns up to limit events with Seq > after, in Seq order. limit is
// clamped to 1..MaxPageSize. Pass the reader pool (sqlitedb.DB.R) unless the
// caller must see its own uncommitted writes.
func Events(ctx context.Context, db *sql.DB, after int64, limit int) ([]Stored, error) {
	limit = min(max(limit, 1), MaxPageSize)
	rows, err := db.QueryContext(ctx, `SELECT seq, event_id, type, schema_version, occurred_at,
		correlation_id, causation_id, aggregate_id, data
		FROM outbox_events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("reading outbox after %d: %w", after, err)
	}
	defer rows.Close()
	out := make([]Stored, 0, min(limit, 64))
	for rows.Next() {
		var s Stored
		var occurred, data string
		if err := rows.Scan(&s.Seq, &s.EventID, &s.Type, &s.SchemaVersion, &occurred,
			&s.CorrelationID, &s.CausationID, &s.AggregateID, &data); err != nil {
			return nil, fmt.Errorf("reading outbox row: %w", err)
		}
		t, err := time.Parse(time.RFC3339Nano, occurred)
		if err != nil {
			return nil, fmt.Errorf("outbox event %d has a bad occurred_at %q: %w", s.Seq, occurred, err)
		}
		s.OccurredAt = t.UTC()
		s.Data = json.RawMessage(data)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading outbox after %d: %w", after, err)
	}
	return out, nil
}

// Last returns the most recent event of type typ, and false when there is
// none. It serves test tooling (the Pact message endpoint), not consumers:
// consumers page through Events.
func Last(ctx context.Context, db *sql.DB, typ string) (Stored, bool, error) {
	var s Stored
	var occurred, data string
	err := db.QueryRowContext(ctx, `SELECT seq, event_id, type, schema_version, occurred_at,
		correlation_id, causation_id, aggregate_id, data
		FROM outbox_events WHERE type = ? ORDER BY seq DESC LIMIT 1`, typ).Scan(&s.Seq, &s.EventID, &s.Type,
		&s.SchemaVersion, &occurred, &s.CorrelationID, &s.CausationID, &s.AggregateID, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return Stored{}, false, nil
	}
	if err != nil {
		return Stored{}, false, fmt.Errorf("reading the last %s: %w", typ, err)
	}
	t, err := time.Parse(time.RFC3339Nano, occurred)
	if err != nil {
		return Stored{}, false, fmt.Errorf("outbox event %d has a bad occurred_at %q: %w", s.Seq, occurred, err)
	}
	s.OccurredAt, s.Data = t.UTC(), json.RawMessage(data)
	return s, true, nil
}
