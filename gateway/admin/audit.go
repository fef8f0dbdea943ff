package admin

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
)

// migrations returns the audit log's schema; append steps, never edit one
// that shipped.
func migrations() []sqlitedb.Migration {
	return []sqlitedb.Migration{
		{
			Name: "audit log",
			SQL: `CREATE TABLE audit_log (
			id         INTEGER PRIMARY KEY AUTOINCREMENT,
			at_ms      INTEGER NOT NULL, -- Unix milliseconds, UTC
			actor      TEXT NOT NULL,    -- admin token name
			action     TEXT NOT NULL,    -- canary | pin | resume
			route      TEXT NOT NULL,
			from_state TEXT NOT NULL,
			to_state   TEXT NOT NULL,
			reason     TEXT NOT NULL,
			request_id TEXT NOT NULL
		);
		CREATE INDEX audit_log_route ON audit_log(route, id);
		CREATE INDEX audit_log_at ON audit_log(at_ms)`,
		},
	}
}

// AuditEntry is one recorded change.
type AuditEntry struct {
	ID int64 `json:"id"`
	// At is when the change was applied, UTC, millisecond precision.
	At time.Time `json:"at"`
	// Actor is the name of the admin token that made the change.
	Actor string `json:"actor"`
	// Action is canary, pin or resume.
	Action string `json:"action"`
	Route  string `json:"route"`
	// From and To describe the changed aspect: "25%" -> "50%" for canary,
	// "unpinned" / "pinned:new" for pin and resume.
	From      string `json:"from"`
	To        string `json:"to"`
	Reason    string `json:"reason"`
	RequestID string `json:"requestId"`
}

func insertAudit(ctx context.Context, tx *sql.Tx, e AuditEntry) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO audit_log
		(at_ms, actor, action, route, from_state, to_state, reason, request_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		e.At.UnixMilli(), e.Actor, e.Action, e.Route, e.From, e.To, e.Reason, e.RequestID)
	if err != nil {
		return 0, fmt.Errorf("writing audit entry: %w", err)
	}
	return res.LastInsertId()
}

type auditQuery struct {
	route        string
	fromMS, toMS int64 // 0: unbounded
	limit        int
}

// queryAudit returns entries newest first.
func (a *API) queryAudit(ctx context.Context, q auditQuery) ([]AuditEntry, error) {
	var where []string
	var args []any
	if q.route != "" {
		where = append(where, "route = ?")
		args = append(args, q.route)
	}
	if q.fromMS > 0 {
		where = append(where, "at_ms >= ?")
		args = append(args, q.fromMS)
	}
	if q.toMS > 0 {
		where = append(where, "at_ms <= ?")
		args = append(args, q.toMS)
	}
	query := `SELECT id, at_ms, actor, action, route, from_state, to_state, reason, request_id FROM audit_log`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id DESC LIMIT ?"
	args = append(args, q.limit)
	rows, err := a.db.R.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("querying audit log: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var ms int64
		if err := rows.Scan(&e.ID, &ms, &e.Actor, &e.Action, &e.Route, &e.From, &e.To, &e.Reason, &e.RequestID); err != nil {
			return nil, fmt.Errorf("reading audit row: %w", err)
		}
		e.At = time.UnixMilli(ms).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	return out, nil
}

// RestoreState re-applies, to a freshly started engine, the latest canary
// percent and the latest pin (or resume) that the audit log records for
// each route, so that an operator's change, say a pin to legacy during an
// incident, survives a restart instead of silently reverting to the config
// file. Call it once after New and before serving traffic; skip it to let
// the config file's values win. Entries for routes that no longer exist, or
// that the current config no longer allows, are logged and skipped. It
// returns how many changes it re-applied.
func (a *API) RestoreState(ctx context.Context) (int, error) {
	a.changeMu.Lock()
	defer a.changeMu.Unlock()
	rows, err := a.db.R.QueryContext(ctx, `SELECT route, action, to_state FROM audit_log
		WHERE id IN (SELECT MAX(id) FROM audit_log GROUP BY route, action = 'canary')
		ORDER BY id`)
	if err != nil {
		return 0, fmt.Errorf("reading audit log: %w", err)
	}
	type last struct{ route, action, to string }
	var lasts []last
	for rows.Next() {
		var l last
		if err := rows.Scan(&l.route, &l.action, &l.to); err != nil {
			_ = rows.Close()
			return 0, fmt.Errorf("reading audit row: %w", err)
		}
		lasts = append(lasts, l)
	}
	_ = rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("reading audit log: %w", err)
	}
	applied := 0
	for _, l := range lasts {
		var err error
		switch {
		case l.action == ActionCanary:
			var p float64
			p, err = strconv.ParseFloat(strings.TrimSuffix(l.to, "%"), 64)
			if err == nil {
				_, err = a.engine.SetCanary(l.route, p)
			}
		case strings.HasPrefix(l.to, "pinned:"):
			b, ok := decide.ParseBackend(strings.TrimPrefix(l.to, "pinned:"))
			if !ok {
				err = fmt.Errorf("unknown backend in %q", l.to)
				break
			}
			_, err = a.engine.Pin(l.route, b)
		default: // unpinned: a fresh engine is unpinned already
			continue
		}
		if err != nil {
			a.log.Warn("audited change not restored", "route", l.route, "action", l.action, "to", l.to, "err", err)
			continue
		}
		a.log.Info("audited change restored", "route", l.route, "action", l.action, "to", l.to)
		applied++
	}
	return applied, nil
}
