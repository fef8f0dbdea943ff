package order

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/internal/sqlitedb"
	"github.com/ficus-gw/ficus/newsvc/outbox"
)

// migrations is the Order service's schema, in order. Never edit a step that
// shipped; append one.
func migrations() []sqlitedb.Migration {
	return []sqlitedb.Migration{
		{
			Name: "orders, lines, idempotency keys, pending stock releases",
			SQL: `CREATE TABLE orders (
	seq             INTEGER PRIMARY KEY AUTOINCREMENT,
	id              TEXT NOT NULL UNIQUE,
	customer_id     TEXT NOT NULL,
	status          TEXT NOT NULL CHECK (status IN ('PLACED','PAID','SHIPPED','CANCELLED')),
	currency        TEXT NOT NULL,
	total_minor     INTEGER NOT NULL CHECK (total_minor >= 0),
	legacy_order_no TEXT UNIQUE,
	created_at      TEXT NOT NULL,
	updated_at      TEXT NOT NULL,
	version         INTEGER NOT NULL
);
CREATE INDEX orders_by_customer ON orders(customer_id, seq);
CREATE TABLE order_lines (
	order_id         TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
	line_no          INTEGER NOT NULL,
	sku              TEXT NOT NULL,
	name             TEXT NOT NULL,
	quantity         INTEGER NOT NULL CHECK (quantity > 0),
	unit_price_minor INTEGER NOT NULL CHECK (unit_price_minor >= 0),
	line_total_minor INTEGER NOT NULL,
	PRIMARY KEY (order_id, line_no)
);
CREATE TABLE idempotency_keys (
	key          TEXT PRIMARY KEY,
	request_hash TEXT NOT NULL,
	order_id     TEXT NOT NULL,
	state        TEXT NOT NULL CHECK (state IN ('pending','done')),
	claimed_at   TEXT NOT NULL,
	status       INTEGER NOT NULL DEFAULT 0,
	location     TEXT NOT NULL DEFAULT '',
	body         BLOB
);
CREATE TABLE pending_releases (
	idem_key   TEXT PRIMARY KEY,
	sku        TEXT NOT NULL,
	quantity   INTEGER NOT NULL,
	order_id   TEXT NOT NULL,
	created_at TEXT NOT NULL
);`,
		},
		outbox.Migration,
		{
			Name: "intent lineage of orders, stock releases by reference",
			// intent_ref: IntentRef of the Idempotency-Key an order was booked
			// under (new side); ext_ref: the legacy's ext_ref of a mirrored
			// order. pending_reference_releases: orders ids whose Catalog
			// reservations must all be released (a placement that failed or
			// died), kept until the Catalog acknowledges.
			SQL: `ALTER TABLE orders ADD COLUMN intent_ref TEXT;
ALTER TABLE orders ADD COLUMN ext_ref TEXT;
CREATE INDEX orders_by_intent_ref ON orders(intent_ref) WHERE intent_ref IS NOT NULL;
CREATE INDEX orders_by_ext_ref ON orders(ext_ref) WHERE ext_ref IS NOT NULL;
CREATE TABLE pending_reference_releases (
	reference  TEXT PRIMARY KEY,
	cause      TEXT NOT NULL,
	created_at TEXT NOT NULL
);`,
		},
	}
}

// errNotFound is returned by the store when no order has the id.
var errNotFound = errors.New("order not found")

// querier is what both *sql.DB and *sql.Tx offer, so reads can run on the
// reader pool or inside the writer's transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad timestamp %q in the orders database: %w", s, err)
	}
	return t.UTC(), nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// insertOrder writes o and its lines in tx.
func insertOrder(ctx context.Context, tx *sql.Tx, o *Order) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO orders
		(id, customer_id, status, currency, total_minor, legacy_order_no, created_at, updated_at, version, intent_ref, ext_ref)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		o.ID, o.CustomerID, string(o.Status), o.Currency, o.Total.AmountMinor, nullString(o.LegacyOrderNo),
		formatTime(o.CreatedAt), formatTime(o.UpdatedAt), o.Version, nullString(o.intentRef), nullString(o.extRef)); err != nil {
		return fmt.Errorf("inserting order %s: %w", o.ID, err)
	}
	return insertLines(ctx, tx, o)
}

func insertLines(ctx context.Context, tx *sql.Tx, o *Order) error {
	for i, l := range o.Lines {
		if _, err := tx.ExecContext(ctx, `INSERT INTO order_lines
			(order_id, line_no, sku, name, quantity, unit_price_minor, line_total_minor)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			o.ID, i+1, l.Sku, l.Name, l.Quantity, l.UnitPrice.AmountMinor, l.LineTotal.AmountMinor); err != nil {
			return fmt.Errorf("inserting line %d of order %s: %w", i+1, o.ID, err)
		}
	}
	return nil
}

const orderColumns = `seq, id, customer_id, status, currency, total_minor, COALESCE(legacy_order_no, ''), created_at, updated_at, version,
	COALESCE(intent_ref, ''), COALESCE(ext_ref, '')`

type rowScanner interface{ Scan(dest ...any) error }

func scanOrder(r rowScanner) (Order, int64, error) {
	var o Order
	var seq int64
	var status, created, updated string
	if err := r.Scan(&seq, &o.ID, &o.CustomerID, &status, &o.Currency, &o.Total.AmountMinor,
		&o.LegacyOrderNo, &created, &updated, &o.Version, &o.intentRef, &o.extRef); err != nil {
		return Order{}, 0, err
	}
	o.Status = Status(status)
	o.Total.Currency = o.Currency
	var err error
	if o.CreatedAt, err = parseTime(created); err != nil {
		return Order{}, 0, err
	}
	if o.UpdatedAt, err = parseTime(updated); err != nil {
		return Order{}, 0, err
	}
	return o, seq, nil
}

// getOrder reads one order with its lines; errNotFound when absent.
func getOrder(ctx context.Context, q querier, id string) (Order, error) {
	o, _, err := scanOrder(q.QueryRowContext(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Order{}, errNotFound
	}
	if err != nil {
		return Order{}, fmt.Errorf("reading order %s: %w", id, err)
	}
	orders := []Order{o}
	if err := loadLines(ctx, q, orders); err != nil {
		return Order{}, err
	}
	return orders[0], nil
}

// getOrderByLegacyNo is getOrder keyed by the legacy order number.
func getOrderByLegacyNo(ctx context.Context, q querier, no string) (Order, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM orders WHERE legacy_order_no = ?`, no).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return Order{}, errNotFound
	}
	if err != nil {
		return Order{}, fmt.Errorf("reading legacy order %s: %w", no, err)
	}
	return getOrder(ctx, q, id)
}

// loadLines fills the Lines of every order in one query.
func loadLines(ctx context.Context, q querier, orders []Order) error {
	if len(orders) == 0 {
		return nil
	}
	idx := make(map[string]int, len(orders))
	args := make([]any, len(orders))
	for i := range orders {
		idx[orders[i].ID] = i
		args[i] = orders[i].ID
		orders[i].Lines = []Line{}
	}
	rows, err := q.QueryContext(ctx, `SELECT order_id, sku, name, quantity, unit_price_minor, line_total_minor
		FROM order_lines WHERE order_id IN (?`+strings.Repeat(",?", len(orders)-1)+`) ORDER BY order_id, line_no`, args...)
	if err != nil {
		return fmt.Errorf("reading order lines: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var l Line
		if err := rows.Scan(&id, &l.Sku, &l.Name, &l.Quantity, &l.UnitPrice.AmountMinor, &l.LineTotal.AmountMinor); err != nil {
			return fmt.Errorf("reading order line: %w", err)
		}
		o := &orders[idx[id]]
		l.UnitPrice.Currency, l.LineTotal.Currency = o.Currency, o.Currency
		o.Lines = append(o.Lines, l)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading order lines: %w", err)
	}
	return nil
}

// listOrders returns up to limit orders of a customer with seq < before,
// newest first, and the seq to continue from (0 when this is the last
// page). Keyset pagination: a page costs the same however deep it is, and
// orders placed meanwhile neither repeat nor vanish from later pages.
func listOrders(ctx context.Context, q querier, customerID string, before int64, limit int) ([]Order, int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+orderColumns+` FROM orders
		WHERE customer_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, customerID, before, limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("listing orders of %s: %w", customerID, err)
	}
	defer rows.Close()
	orders := make([]Order, 0, limit)
	var seqs []int64
	for rows.Next() {
		o, seq, err := scanOrder(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("listing orders of %s: %w", customerID, err)
		}
		orders = append(orders, o)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("listing orders of %s: %w", customerID, err)
	}
	var next int64
	if len(orders) > limit {
		orders = orders[:limit]
		next = seqs[limit-1]
	}
	if err := loadLines(ctx, q, orders); err != nil {
		return nil, 0, err
	}
	return orders, next, nil
}

// updateStatus moves an order to status `to`, bumping its version, but only
// if it is still at version `version`: a concurrent change loses the race
// instead of being overwritten.
func updateStatus(ctx context.Context, tx *sql.Tx, o *Order, to Status, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE orders SET status = ?, updated_at = ?, version = version + 1
		WHERE id = ? AND version = ?`, string(to), formatTime(now), o.ID, o.Version)
	if err != nil {
		return fmt.Errorf("updating order %s: %w", o.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("updating order %s: changed concurrently (rows %d, %v)", o.ID, n, err)
	}
	o.Status, o.UpdatedAt, o.Version = to, now.UTC(), o.Version+1
	return nil
}

// idemRecord is the stored state of an Idempotency-Key.
type idemRecord struct {
	hash      string
	orderID   string
	done      bool
	claimedAt time.Time
	reply     reply
}

// reply is a response exactly as first sent, replayed for retries.
type reply struct {
	status   int
	location string
	body     []byte
}

func readKey(ctx context.Context, q querier, key string) (idemRecord, bool, error) {
	var r idemRecord
	var state, claimed string
	err := q.QueryRowContext(ctx, `SELECT request_hash, order_id, state, claimed_at, status, location, body
		FROM idempotency_keys WHERE key = ?`, key).
		Scan(&r.hash, &r.orderID, &state, &claimed, &r.reply.status, &r.reply.location, &r.reply.body)
	if errors.Is(err, sql.ErrNoRows) {
		return idemRecord{}, false, nil
	}
	if err != nil {
		return idemRecord{}, false, fmt.Errorf("reading idempotency key: %w", err)
	}
	r.done = state == "done"
	if r.claimedAt, err = parseTime(claimed); err != nil {
		return idemRecord{}, false, err
	}
	return r, true, nil
}

// claimKey claims key for this request in tx, or reports who holds it. A
// pending claim older than lease with the same body hash is taken over
// (its process died), keeping its order id so that the Catalog sees the
// same stock-adjustment keys and replays instead of reserving twice.
func claimKey(ctx context.Context, tx *sql.Tx, key, hash, newOrderID string, now time.Time, lease time.Duration) (rec idemRecord, claimed bool, err error) {
	rec, found, err := readKey(ctx, tx, key)
	if err != nil {
		return idemRecord{}, false, err
	}
	switch {
	case !found:
		if _, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (key, request_hash, order_id, state, claimed_at)
			VALUES (?, ?, ?, 'pending', ?)`, key, hash, newOrderID, formatTime(now)); err != nil {
			return idemRecord{}, false, fmt.Errorf("claiming idempotency key: %w", err)
		}
		return idemRecord{hash: hash, orderID: newOrderID, claimedAt: now}, true, nil
	case !rec.done && rec.hash == hash && now.Sub(rec.claimedAt) > lease:
		if _, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET claimed_at = ? WHERE key = ?`, formatTime(now), key); err != nil {
			return idemRecord{}, false, fmt.Errorf("taking over idempotency key: %w", err)
		}
		rec.claimedAt = now
		return rec, true, nil
	}
	return rec, false, nil
}

// finishKey stores the reply of the request that holds key.
func finishKey(ctx context.Context, tx *sql.Tx, key string, r reply) error {
	_, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET state = 'done', status = ?, location = ?, body = ?
		WHERE key = ?`, r.status, r.location, r.body, key)
	if err != nil {
		return fmt.Errorf("storing idempotent reply: %w", err)
	}
	return nil
}

// retireClaim forgets the pending claim of key, but only if it is still the
// one claimed for orderID at claimedAt: a claim taken over meanwhile (same
// order id, later claimed_at) or finished is left alone, so a request, the
// sweeper and a takeover cannot each think they own it. It reports whether
// the claim was deleted. The client may then retry with the same key (the
// failure is not replayed: it was caused by stock or the Catalog's health,
// which may change).
func retireClaim(ctx context.Context, tx *sql.Tx, key, orderID string, claimedAt time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys
		WHERE key = ? AND order_id = ? AND state = 'pending' AND claimed_at = ?`, key, orderID, formatTime(claimedAt))
	if err != nil {
		return false, fmt.Errorf("dropping idempotency key: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("dropping idempotency key: %w", err)
	}
	return n == 1, nil
}

// staleClaim is a claim left pending beyond its lease.
type staleClaim struct {
	key       string
	orderID   string
	claimedAt time.Time
}

// staleClaims returns up to limit claims still pending that were claimed
// before cutoff. Pending claims are the requests in flight (plus any left
// by a crash), so reading them all is cheap.
func staleClaims(ctx context.Context, q querier, cutoff time.Time, limit int) ([]staleClaim, error) {
	rows, err := q.QueryContext(ctx, `SELECT key, order_id, claimed_at FROM idempotency_keys
		WHERE state = 'pending' ORDER BY claimed_at`)
	if err != nil {
		return nil, fmt.Errorf("reading pending idempotency claims: %w", err)
	}
	defer rows.Close()
	var out []staleClaim
	for rows.Next() {
		var c staleClaim
		var claimed string
		if err := rows.Scan(&c.key, &c.orderID, &claimed); err != nil {
			return nil, fmt.Errorf("reading pending idempotency claim: %w", err)
		}
		if c.claimedAt, err = parseTime(claimed); err != nil {
			return nil, err
		}
		// claimed_at is RFC 3339 with trimmed fractions, which does not sort
		// as text: compare as times.
		if c.claimedAt.Before(cutoff) && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, rows.Err()
}

// Causes of a release by reference, stored with it for operators.
const (
	causePlacementFailed = "placement-failed"
	causeStaleClaim      = "stale-claim"
)

// queueReferenceRelease records in tx that every Catalog reservation made
// under reference (an order id) must be released; Run retries it until the
// Catalog acknowledges.
func queueReferenceRelease(ctx context.Context, tx *sql.Tx, reference, cause string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO pending_reference_releases (reference, cause, created_at)
		VALUES (?, ?, ?) ON CONFLICT(reference) DO NOTHING`, reference, cause, formatTime(now)); err != nil {
		return fmt.Errorf("queueing the release of reservations of %s: %w", reference, err)
	}
	return nil
}

func pendingReferenceReleases(ctx context.Context, q querier, limit int) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT reference FROM pending_reference_releases ORDER BY created_at LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("reading pending releases by reference: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, fmt.Errorf("reading pending release by reference: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// pruneKeys forgets finished keys claimed before cutoff and returns how
// many. Pending keys stay: their lease, not their age, decides.
func pruneKeys(ctx context.Context, db *sql.DB, cutoff time.Time) (int64, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE state = 'done' AND claimed_at < ?`, formatTime(cutoff))
	if err != nil {
		return 0, fmt.Errorf("pruning idempotency keys: %w", err)
	}
	return res.RowsAffected()
}

// release is a stock release owed to the Catalog: reserved stock of a
// cancelled order or of a placement that failed half-way.
type release struct {
	key      string
	sku      string
	quantity int
	orderID  string
}

// releaseKey is the Catalog Idempotency-Key of giving back a line's stock.
func releaseKey(orderID, sku string) string { return orderID + sku + ":release" }

// reserveKey is the Catalog Idempotency-Key of reserving a line's stock.
func reserveKey(orderID, sku string) string { return orderID + sku }

// queueReleases records releases in tx; they are sent after the commit and
// retried by Run until the Catalog acknowledges them, so that reserved stock
// is never leaked by a Catalog outage.
func queueReleases(ctx context.Context, tx *sql.Tx, rs []release, now time.Time) error {
	for _, r := range rs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO pending_releases (idem_key, sku, quantity, order_id, created_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT(idem_key) DO NOTHING`, r.key, r.sku, r.quantity, r.orderID, formatTime(now)); err != nil {
			return fmt.Errorf("queueing stock release of %s: %w", r.sku, err)
		}
	}
	return nil
}

func pendingReleases(ctx context.Context, q querier, limit int) ([]release, error) {
	rows, err := q.QueryContext(ctx, `SELECT idem_key, sku, quantity, order_id FROM pending_releases ORDER BY created_at LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("reading pending stock releases: %w", err)
	}
	defer rows.Close()
	var out []release
	for rows.Next() {
		var r release
		if err := rows.Scan(&r.key, &r.sku, &r.quantity, &r.orderID); err != nil {
			return nil, fmt.Errorf("reading pending stock release: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
