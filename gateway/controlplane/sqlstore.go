package controlplane

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// dialect is what differs between SQLite and PostgreSQL in the shared
// store below.
type dialect struct {
	name string
	// dollar: placeholders are $1, $2 (PostgreSQL), not ?.
	dollar bool
	// lockMeta locks the version row for the rest of the transaction
	// (SQLite transactions are IMMEDIATE, so they hold the write lock
	// already).
	lockMeta string
	// afterWrite runs inside the write transaction after a change (the
	// fleet's NOTIFY); "" = nothing. It gets the new version as $1.
	afterWrite string
}

// sqlStore is the Store over database/sql, shared by both
// implementations.
type sqlStore struct {
	d         dialect
	w, r      *sql.DB // writer and reader (the same pool for PostgreSQL)
	now       func() time.Time
	changed   notifier
	connected atomic.Bool
	closeFn   func() error
	listenOK  func() bool // nil: no separate listener
}

var _ Store = (*sqlStore)(nil)

func (s *sqlStore) q(query string) string {
	if !s.d.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// track records whether the database answered; every error here is
// treated as the store being unreachable except the caller's own.
func (s *sqlStore) track(op string, err error) error {
	if err == nil {
		s.connected.Store(true)
		return nil
	}
	if errors.Is(err, ErrInvalid) || errors.Is(err, ErrConflict) {
		return err
	}
	s.connected.Store(false)
	return unavailable(op, err)
}

func (s *sqlStore) Connected() bool {
	if s.listenOK != nil && !s.listenOK() {
		return false
	}
	return s.connected.Load()
}

func (s *sqlStore) Changed() <-chan struct{} { return s.changed }

func (s *sqlStore) Close() error { return s.closeFn() }

func (s *sqlStore) Version(ctx context.Context) (int64, error) {
	var v int64
	err := s.r.QueryRowContext(ctx, `SELECT version FROM ficus_cp_meta WHERE id = 1`).Scan(&v)
	return v, s.track("reading the state version", err)
}

const routeCols = `route, version, updated_ms, canary, pin, cohort_percent, rollout`

type scanner interface{ Scan(dst ...any) error }

func scanRoute(row scanner) (string, RouteState, error) {
	var (
		name    string
		st      RouteState
		ms      int64
		canary  sql.NullFloat64
		pin     sql.NullString
		cohort  sql.NullFloat64
		rollout sql.NullString
	)
	if err := row.Scan(&name, &st.Version, &ms, &canary, &pin, &cohort, &rollout); err != nil {
		return "", RouteState{}, err
	}
	st.UpdatedAt = time.UnixMilli(ms).UTC()
	if canary.Valid {
		st.Canary = ptr(canary.Float64)
	}
	if pin.Valid {
		st.Pin = ptr(pin.String)
	}
	if cohort.Valid {
		st.CohortPercent = ptr(cohort.Float64)
	}
	if rollout.Valid {
		r, err := decodeRollout(&rollout.String)
		if err != nil {
			return "", RouteState{}, fmt.Errorf("route %q: %w", name, err)
		}
		st.Rollout = r
	}
	return name, st, nil
}

func (s *sqlStore) Snapshot(ctx context.Context) (Snapshot, error) {
	snap, err := s.snapshot(ctx)
	return snap, s.track("reading the route state", err)
}

func (s *sqlStore) snapshot(ctx context.Context) (Snapshot, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{Isolation: s.snapshotIsolation()})
	if err != nil {
		return Snapshot{}, err
	}
	defer func() { _ = tx.Rollback() }()
	snap := Snapshot{Routes: map[string]RouteState{}}
	if err := tx.QueryRowContext(ctx, `SELECT version FROM ficus_cp_meta WHERE id = 1`).Scan(&snap.Version); err != nil {
		return Snapshot{}, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+routeCols+` FROM ficus_cp_route`)
	if err != nil {
		return Snapshot{}, err
	}
	defer rows.Close()
	for rows.Next() {
		name, st, err := scanRoute(rows)
		if err != nil {
			return Snapshot{}, err
		}
		snap.Routes[name] = st
	}
	return snap, rows.Err()
}

// snapshotIsolation: PostgreSQL needs REPEATABLE READ for the version and
// the routes to come from one snapshot; a SQLite read transaction is one
// snapshot already (and the driver accepts only the default).
func (s *sqlStore) snapshotIsolation() sql.IsolationLevel {
	if s.d.dollar {
		return sql.LevelRepeatableRead
	}
	return sql.LevelDefault
}

func (s *sqlStore) Apply(ctx context.Context, ch Change) (Result, error) {
	rs, err := s.ApplyBatch(ctx, []Change{ch})
	if err != nil {
		return Result{}, err
	}
	return rs[0], nil
}

func (s *sqlStore) ApplyBatch(ctx context.Context, chs []Change) ([]Result, error) {
	if len(chs) == 0 {
		return nil, fmt.Errorf("%w: an empty batch", ErrInvalid)
	}
	seen := map[string]bool{}
	for _, ch := range chs {
		if err := validate(ch); err != nil {
			return nil, err
		}
		if seen[ch.Route] {
			return nil, fmt.Errorf("%w: route %q twice in one batch", ErrInvalid, ch.Route)
		}
		seen[ch.Route] = true
	}
	var out []Result
	changed := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out, changed = make([]Result, len(chs)), false
		var version int64
		if err := tx.QueryRowContext(ctx, `SELECT version FROM ficus_cp_meta WHERE id = 1`+s.d.lockMeta).Scan(&version); err != nil {
			return err
		}
		type pending struct {
			next   RouteState
			fields []fieldChange
		}
		plan := make([]pending, len(chs))
		// Check every change before writing any: a batch is all or nothing.
		for i, ch := range chs {
			_, cur, err := scanRoute(tx.QueryRowContext(ctx, s.q(`SELECT `+routeCols+` FROM ficus_cp_route WHERE route = ?`), ch.Route))
			exists := err == nil
			switch {
			case errors.Is(err, sql.ErrNoRows):
				cur = RouteState{}
			case err != nil:
				return err
			}
			if (ch.ExpectVersion != 0 && cur.Version > ch.ExpectVersion) || (ch.MustNotExist && exists) {
				return &ConflictError{Route: ch.Route, Expected: ch.ExpectVersion, Current: cur, Version: version}
			}
			next, fields := merge(cur, ch.Set, ch.Config)
			plan[i] = pending{next, fields}
			out[i] = Result{State: cur, Version: version}
			changed = changed || len(fields) > 0
		}
		if !changed {
			return nil
		}
		version++
		at := s.now().UTC().Truncate(time.Millisecond)
		for i, ch := range chs {
			p := plan[i]
			if len(p.fields) == 0 {
				out[i].Version = version
				continue
			}
			next := p.next
			next.Version, next.UpdatedAt = version, at
			rollout, err := encodeRollout(next.Rollout)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO ficus_cp_route (`+routeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (route) DO UPDATE SET version = excluded.version, updated_ms = excluded.updated_ms,
				canary = excluded.canary, pin = excluded.pin, cohort_percent = excluded.cohort_percent, rollout = excluded.rollout`),
				ch.Route, version, at.UnixMilli(), next.Canary, next.Pin, next.CohortPercent, rollout); err != nil {
				return fmt.Errorf("writing route %q: %w", ch.Route, err)
			}
			out[i] = Result{Changed: true, State: next, Version: version}
			if ch.Quiet {
				continue
			}
			for _, f := range p.fields {
				e := AuditEntry{At: at, Version: version, Actor: ch.Actor, Reason: ch.Reason, RequestID: ch.RequestID,
					Route: ch.Route, Field: f.field, Old: f.old, New: f.new}
				if e.ID, err = s.insertAudit(ctx, tx, e); err != nil {
					return err
				}
				out[i].Audit = append(out[i].Audit, e)
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE ficus_cp_meta SET version = ? WHERE id = 1`), version); err != nil {
			return err
		}
		if s.d.afterWrite != "" {
			if _, err := tx.ExecContext(ctx, s.d.afterWrite, strconv.FormatInt(version, 10)); err != nil {
				return fmt.Errorf("notifying replicas: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		what := "writing route " + strconv.Quote(chs[0].Route)
		if len(chs) > 1 {
			what = fmt.Sprintf("writing %d routes", len(chs))
		}
		return nil, s.track(what, err)
	}
	if changed {
		s.changed.signal()
	}
	return out, nil
}

func (s *sqlStore) insertAudit(ctx context.Context, tx *sql.Tx, e AuditEntry) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, s.q(`INSERT INTO ficus_cp_audit
		(at_ms, version, actor, reason, request_id, route, field, old, new)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		e.At.UnixMilli(), e.Version, e.Actor, e.Reason, e.RequestID, e.Route, e.Field, string(orNull(e.Old)), string(orNull(e.New))).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("writing audit entry: %w", err)
	}
	return id, nil
}

func orNull(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}

func (s *sqlStore) Record(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	if e.Actor == "" || e.Field == "" {
		return AuditEntry{}, fmt.Errorf("%w: an audit entry needs an actor and a field", ErrInvalid)
	}
	e.At = s.now().UTC().Truncate(time.Millisecond)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT version FROM ficus_cp_meta WHERE id = 1`).Scan(&e.Version); err != nil {
			return err
		}
		var err error
		e.ID, err = s.insertAudit(ctx, tx, e)
		return err
	})
	if err != nil {
		return AuditEntry{}, s.track("writing an audit entry", err)
	}
	e.Old, e.New = orNull(e.Old), orNull(e.New)
	return e, nil
}

func (s *sqlStore) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	var where []string
	var args []any
	if q.Route != "" {
		where = append(where, "route = ?")
		args = append(args, q.Route)
	}
	if !q.From.IsZero() {
		where = append(where, "at_ms >= ?")
		args = append(args, q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		where = append(where, "at_ms <= ?")
		args = append(args, q.To.UnixMilli())
	}
	query := `SELECT id, at_ms, version, actor, reason, request_id, route, field, old, new FROM ficus_cp_audit`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id DESC LIMIT ?"
	args = append(args, limitOf(q))
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, s.track("reading the audit log", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var ms int64
		var old, nw string
		if err := rows.Scan(&e.ID, &ms, &e.Version, &e.Actor, &e.Reason, &e.RequestID, &e.Route, &e.Field, &old, &nw); err != nil {
			return nil, s.track("reading the audit log", err)
		}
		e.At = time.UnixMilli(ms).UTC()
		e.Old, e.New = []byte(old), []byte(nw)
		out = append(out, e)
	}
	return out, s.track("reading the audit log", rows.Err())
}

func (s *sqlStore) tx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	tx, err := s.w.BeginTx(ctx, nil)
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
