package controlplane

import (
	"context"
	"fmt"
	"time"

	"github.com/ficus-gw/ficus/internal/sqlitedb"
)

// OpenSQLite opens (creating and migrating) the control plane in a SQLite
// file: the default for a single gateway. Other processes may share the
// file; they see each other's changes at their next version check (the
// sync interval), this process's own changes at once. now nil means
// time.Now.
//
// The file may be the audit database of a gateway from before the control
// plane (admin.auditDB): the migration keeps its audit_log table, copies
// its entries into the new audit log and imports each route's last canary
// percent and pin as typed state, once.
func OpenSQLite(ctx context.Context, path string, now func() time.Time) (Store, error) {
	db, err := sqlitedb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	if err := db.Migrate(ctx, sqliteMigrations()); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("control plane: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	s := &sqlStore{
		d: dialect{name: "sqlite"}, w: db.W, r: db.R, now: now,
		changed: newNotifier(), closeFn: db.Close,
	}
	s.connected.Store(true)
	return s, nil
}

// sqliteMigrations: step 1 is the audit log of the admin API before the
// control plane existed (same text, so that its files upgrade in place);
// append steps, never edit one that shipped.
func sqliteMigrations() []sqlitedb.Migration {
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
		{
			Name: "control plane: typed route state, state version, typed audit log; import the old audit log",
			SQL: `CREATE TABLE ficus_cp_meta (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
		INSERT INTO ficus_cp_meta (id, version) VALUES (1, 0);
		CREATE TABLE ficus_cp_route (
			route          TEXT PRIMARY KEY,
			version        INTEGER NOT NULL, -- state version of the last change
			updated_ms     INTEGER NOT NULL,
			canary         REAL,             -- NULL: the config's value applies
			pin            TEXT,             -- '', 'legacy', 'new'; NULL: never pinned
			cohort_percent REAL,
			rollout        TEXT              -- JSON, owned by the autopilot
		);
		CREATE TABLE ficus_cp_audit (
			id         INTEGER PRIMARY KEY AUTOINCREMENT,
			at_ms      INTEGER NOT NULL,
			version    INTEGER NOT NULL,
			actor      TEXT NOT NULL,
			reason     TEXT NOT NULL,
			request_id TEXT NOT NULL,
			route      TEXT NOT NULL,
			field      TEXT NOT NULL,
			old        TEXT NOT NULL, -- JSON
			new        TEXT NOT NULL  -- JSON
		);
		CREATE INDEX ficus_cp_audit_route ON ficus_cp_audit(route, id);
		CREATE INDEX ficus_cp_audit_at ON ficus_cp_audit(at_ms);
		INSERT INTO ficus_cp_audit (at_ms, version, actor, reason, request_id, route, field, old, new)
			SELECT at_ms, 0, actor, reason, request_id, route,
				CASE action WHEN 'canary' THEN 'canaryPercent' ELSE 'pin' END,
				CASE WHEN action = 'canary' THEN json_quote(CAST(REPLACE(from_state, '%', '') AS REAL))
				     WHEN from_state LIKE 'pinned:%' THEN json_quote(SUBSTR(from_state, 8)) ELSE '""' END,
				CASE WHEN action = 'canary' THEN json_quote(CAST(REPLACE(to_state, '%', '') AS REAL))
				     WHEN to_state LIKE 'pinned:%' THEN json_quote(SUBSTR(to_state, 8)) ELSE '""' END
			FROM audit_log ORDER BY id;
		INSERT INTO ficus_cp_route (route, version, updated_ms, canary)
			SELECT route, 1, at_ms, CAST(REPLACE(to_state, '%', '') AS REAL) FROM audit_log
			WHERE id IN (SELECT MAX(id) FROM audit_log WHERE action = 'canary' GROUP BY route);
		INSERT INTO ficus_cp_route (route, version, updated_ms, pin)
			SELECT route, 1, at_ms, CASE WHEN to_state LIKE 'pinned:%' THEN SUBSTR(to_state, 8) ELSE '' END FROM audit_log
			WHERE id IN (SELECT MAX(id) FROM audit_log WHERE action IN ('pin', 'resume') GROUP BY route)
			ON CONFLICT (route) DO UPDATE SET pin = excluded.pin;
		UPDATE ficus_cp_meta SET version = (SELECT COUNT(*) > 0 FROM ficus_cp_route)`,
		},
	}
}
