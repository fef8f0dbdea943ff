package shadow

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/ficus-gw/ficus/internal/sqlitedb"
)

// Sample is one differing exchange as stored: the request (secrets
// redacted), both normalised answers and their differences.
type Sample struct {
	At        time.Time         `json:"at"`
	RequestID string            `json:"requestId"`
	Method    string            `json:"method"`
	Path      string            `json:"path"`
	Query     string            `json:"query,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	// PrimaryStatus and ShadowStatus are the two answers' status codes.
	PrimaryStatus int `json:"primaryStatus"`
	ShadowStatus  int `json:"shadowStatus"`
	// PrimaryBody and ShadowBody are the answers in the new contract's
	// terms (after normalisation), shortened to maxStoredBody bytes.
	PrimaryBody string       `json:"primaryBody"`
	ShadowBody  string       `json:"shadowBody"`
	Differences []Difference `json:"differences"`
}

// maxStoredBody bounds each body kept in a sample.
const maxStoredBody = 16 << 10

// redacted replaces the value of a secret header in a stored sample.
const redacted = "[redacted]"

// secretHeader matches header names whose values are never stored.
var secretHeader = regexp.MustCompile(`(?i)token|secret|password|api-?key|^authorization$|^proxy-authorization$|^cookie$|^set-cookie$`)

var migrations = []sqlitedb.Migration{{
	Name: "shadow samples",
	SQL: `CREATE TABLE shadow_samples (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		route TEXT NOT NULL,
		at TEXT NOT NULL,
		sample TEXT NOT NULL
	);
	CREATE INDEX shadow_samples_route ON shadow_samples(route, id)`,
}}

// store keeps the latest differing samples per route.
type store struct{ db *sqlitedb.DB }

func openStore(ctx context.Context, path string) (*store, error) {
	db, err := sqlitedb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening shadow store: %w", err)
	}
	if err := db.Migrate(ctx, migrations); err != nil {
		_ = db.Close()
		return nil, err
	}
	return &store{db: db}, nil
}

// add stores s for route and prunes the route to its latest keep samples,
// in one transaction: a reader never sees more than keep, nor a half-written
// sample.
func (st *store) add(ctx context.Context, route string, keep int, s Sample) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encoding shadow sample: %w", err)
	}
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO shadow_samples(route, at, sample) VALUES (?, ?, ?)`,
			route, s.At.UTC().Format(time.RFC3339Nano), string(b)); err != nil {
			return fmt.Errorf("storing shadow sample: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM shadow_samples WHERE route = ? AND id NOT IN
			(SELECT id FROM shadow_samples WHERE route = ? ORDER BY id DESC LIMIT ?)`, route, route, keep); err != nil {
			return fmt.Errorf("pruning shadow samples: %w", err)
		}
		return nil
	})
}

// latest returns up to n samples of route, newest first.
func (st *store) latest(ctx context.Context, route string, n int) ([]Sample, error) {
	rows, err := st.db.R.QueryContext(ctx, `SELECT sample FROM shadow_samples WHERE route = ? ORDER BY id DESC LIMIT ?`, route, n)
	if err != nil {
		return nil, fmt.Errorf("reading shadow samples: %w", err)
	}
	defer rows.Close()
	var out []Sample
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("reading shadow samples: %w", err)
		}
		var s Sample
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			return nil, fmt.Errorf("decoding shadow sample: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading shadow samples: %w", err)
	}
	return out, nil
}

func (st *store) close() error { return st.db.Close() }
