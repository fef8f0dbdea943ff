package catalog

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
	"github.com/ficus-gw/ficus/newsvc/outbox"
)

// migrations is the catalog's schema history: append, never edit.
var migrations = []sqlitedb.Migration{
	{
		Name: "catalog: products, stock adjustments, idempotency keys",
		SQL: `CREATE TABLE products (
	sku         TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	description TEXT NOT NULL,
	category    TEXT NOT NULL,
	price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
	currency    TEXT NOT NULL,
	stock       INTEGER NOT NULL CHECK (stock >= 0),
	version     INTEGER NOT NULL CHECK (version >= 1),
	updated_at  TEXT NOT NULL
);
CREATE INDEX products_category_sku ON products(category, sku);
CREATE TABLE stock_adjustments (
	id           TEXT PRIMARY KEY,
	sku          TEXT NOT NULL REFERENCES products(sku),
	delta        INTEGER NOT NULL,
	reason       TEXT NOT NULL,
	reference    TEXT NOT NULL,
	stock_before INTEGER NOT NULL,
	stock_after  INTEGER NOT NULL CHECK (stock_after >= 0),
	created_at   TEXT NOT NULL
);
CREATE INDEX stock_adjustments_sku ON stock_adjustments(sku, created_at);
CREATE TABLE idempotency_keys (
	key          TEXT PRIMARY KEY,
	request_hash TEXT NOT NULL,
	status       INTEGER NOT NULL,
	body         BLOB NOT NULL,
	created_at   TEXT NOT NULL
);
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);`,
	},
	outbox.Migration,
	reservationsMigration,
}

// Event types and the schema version of their data that this service emits.
const (
	EventProductUpdated = "product.updated"
	EventStockChanged   = "stock.changed"
	eventSchemaVersion  = 1
	// reasonUpsert is the stock.changed reason when a PUT set the stock.
	reasonUpsert = "product-upsert"
)

// EventTypes are the event types the catalog emits, all in schemaVersion 1
// (contracts/events/asyncapi.yaml).
func EventTypes() []string { return []string{EventProductUpdated, EventStockChanged} }

// StockChanged is the data of a stock.changed event, schema version 1.
type StockChanged struct {
	SKU         string `json:"sku"`
	Delta       int64  `json:"delta"`
	StockBefore int64  `json:"stockBefore"`
	StockAfter  int64  `json:"stockAfter"`
	Reason      string `json:"reason"`
	Reference   string `json:"reference"`
	Version     int64  `json:"version"`
}

// StockAdjustment is the answer to a stock adjustment, and what an
// Idempotency-Key replays.
type StockAdjustment struct {
	ID          string    `json:"id"`
	SKU         string    `json:"sku"`
	Delta       int64     `json:"delta"`
	Reason      string    `json:"reason"`
	Reference   string    `json:"reference"`
	StockBefore int64     `json:"stockBefore"`
	StockAfter  int64     `json:"stockAfter"`
	Version     int64     `json:"version"`
	CreatedAt   time.Time `json:"createdAt"`
}

// tsLayout stores timestamps (always UTC) at fixed width, so that SQL
// string comparisons order them correctly; RFC3339Nano trims zeros and
// would not.
const tsLayout = "2006-01-02T15:04:05.000000000Z07:00"

// querier is what reads need from *sql.DB and *sql.Tx alike.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

const productColumns = `sku, name, description, category, price_minor, currency, stock, version, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanProduct(s scanner) (Product, error) {
	var p Product
	var updated string
	if err := s.Scan(&p.SKU, &p.Name, &p.Description, &p.Category, &p.Price.AmountMinor, &p.Price.Currency,
		&p.Stock, &p.Version, &updated); err != nil {
		return Product{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, updated)
	if err != nil {
		return Product{}, fmt.Errorf("product %s has a bad updated_at %q: %w", p.SKU, updated, err)
	}
	p.UpdatedAt = t.UTC()
	p.Available = p.Stock > 0
	return p, nil
}

// errNoProduct is returned by getProduct when the SKU is unknown.
var errNoProduct = errors.New("no such product")

func getProduct(ctx context.Context, q querier, sku string) (Product, error) {
	p, err := scanProduct(q.QueryRowContext(ctx, `SELECT `+productColumns+` FROM products WHERE sku = ?`, sku))
	if errors.Is(err, sql.ErrNoRows) {
		return Product{}, errNoProduct
	}
	if err != nil {
		return Product{}, fmt.Errorf("reading product %s: %w", sku, err)
	}
	return p, nil
}

// listProducts returns up to limit products with sku > after, in sku order,
// optionally of one category. Keyset pagination: a product that exists for
// the whole walk is seen exactly once whatever is inserted meanwhile.
func listProducts(ctx context.Context, q querier, after, category string, limit int) ([]Product, error) {
	var rows *sql.Rows
	var err error
	if category == "" {
		rows, err = q.QueryContext(ctx, `SELECT `+productColumns+` FROM products WHERE sku > ? ORDER BY sku LIMIT ?`, after, limit)
	} else {
		rows, err = q.QueryContext(ctx, `SELECT `+productColumns+` FROM products WHERE category = ? AND sku > ? ORDER BY sku LIMIT ?`, category, after, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("listing products: %w", err)
	}
	defer rows.Close()
	out := make([]Product, 0, limit)
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return nil, fmt.Errorf("listing products: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing products: %w", err)
	}
	return out, nil
}

// reqMeta is what a write needs to know about the request besides its body.
type reqMeta struct {
	requestID string
	// shadow: validate and answer, then roll back.
	shadow bool
}

// errShadowRollback ends a shadow write's transaction after its answer was
// computed; it never leaves the service.
var errShadowRollback = errors.New("shadow request: rolled back on purpose")

// write runs fn in a write transaction, rolling it back for a shadow
// request, and kicks the dispatcher after a real commit.
func (s *Service) write(ctx context.Context, m reqMeta, fn func(tx *sql.Tx) error) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if m.shadow {
			return errShadowRollback
		}
		return nil
	})
	if errors.Is(err, errShadowRollback) {
		return nil
	}
	if err == nil {
		s.dispatcher.Kick()
	}
	return err
}

// upsertResult is what a PUT did.
type upsertResult struct {
	product Product
	created bool
}

// upsertProduct creates or replaces the product in.SKU. ifMatch, when not
// nil, is the version the client based its change on.
func (s *Service) upsertProduct(ctx context.Context, m reqMeta, in Product, ifMatch *int64) (upsertResult, error) {
	var res upsertResult
	err := s.write(ctx, m, func(tx *sql.Tx) error {
		now := s.now().UTC()
		old, err := getProduct(ctx, tx, in.SKU)
		exists := err == nil
		if err != nil && !errors.Is(err, errNoProduct) {
			return err
		}
		if ifMatch != nil && (!exists || old.Version != *ifMatch) {
			cur := int64(0)
			if exists {
				cur = old.Version
			}
			return apierr.New(apierr.CodeConflict, "product %s is at version %d, not %d: re-read it and retry", in.SKU, cur, *ifMatch).
				WithDetails(map[string]int64{"currentVersion": cur})
		}
		if exists && sameFields(old, in) {
			res = upsertResult{product: old}
			return nil
		}
		p := in
		p.Version = 1
		p.Available = p.Stock > 0
		p.UpdatedAt = now
		if exists {
			p.Version = old.Version + 1
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO products (`+productColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(sku) DO UPDATE SET name = excluded.name, description = excluded.description,
				category = excluded.category, price_minor = excluded.price_minor, currency = excluded.currency,
				stock = excluded.stock, version = excluded.version, updated_at = excluded.updated_at`,
			p.SKU, p.Name, p.Description, p.Category, p.Price.AmountMinor, p.Price.Currency, p.Stock, p.Version,
			p.UpdatedAt.Format(tsLayout)); err != nil {
			return fmt.Errorf("writing product %s: %w", p.SKU, err)
		}
		if err := s.emit(ctx, tx, m, EventProductUpdated, p.SKU, p, now); err != nil {
			return err
		}
		if before := old.Stock; !exists && p.Stock != 0 || exists && before != p.Stock {
			if err := s.emit(ctx, tx, m, EventStockChanged, p.SKU, StockChanged{
				SKU: p.SKU, Delta: p.Stock - before, StockBefore: before, StockAfter: p.Stock,
				Reason: reasonUpsert, Reference: m.requestID, Version: p.Version,
			}, now); err != nil {
				return err
			}
		}
		res = upsertResult{product: p, created: !exists}
		return nil
	})
	return res, err
}

func sameFields(a, b Product) bool {
	return a.Name == b.Name && a.Description == b.Description && a.Category == b.Category &&
		a.Price == b.Price && a.Stock == b.Stock
}

func (s *Service) emit(ctx context.Context, tx *sql.Tx, m reqMeta, typ, sku string, data any, now time.Time) error {
	e, err := outbox.New(typ, eventSchemaVersion, sku, m.requestID, "", data, now)
	if err != nil {
		return err
	}
	return outbox.Append(ctx, tx, e)
}

// storedResponse is a remembered answer to an idempotent request.
type storedResponse struct {
	status int
	body   []byte
	replay bool
}

// adjustStock applies a to sku under the Idempotency-Key key. Inside one
// IMMEDIATE transaction (the writer is a single connection), the key check,
// the stock check and the update are serialised: two concurrent requests
// cannot both see enough stock, and two with the same key cannot both apply.
func (s *Service) adjustStock(ctx context.Context, m reqMeta, sku, key string, a adjustment) (storedResponse, error) {
	hash := requestHash(sku, a)
	var out storedResponse
	err := s.write(ctx, m, func(tx *sql.Tx) error {
		now := s.now().UTC()
		// Checked before the key's replay: a reservation under a released
		// reference is not held, whatever an earlier answer said.
		if a.Reason == reasonOrderReserved {
			if err := refuseReleased(ctx, tx, a.Reference); err != nil {
				return err
			}
		}
		var prevHash string
		var status int
		var body []byte
		err := tx.QueryRowContext(ctx, `SELECT request_hash, status, body FROM idempotency_keys WHERE key = ? AND created_at > ?`,
			key, now.Add(-s.cfg.IdempotencyTTL).Format(tsLayout)).Scan(&prevHash, &status, &body)
		switch {
		case err == nil && prevHash == hash:
			out = storedResponse{status: status, body: body, replay: true}
			return nil
		case err == nil:
			return apierr.New(apierr.CodeIdempotencyReused, "Idempotency-Key %q was already used for a different request", key)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("reading idempotency key: %w", err)
		}
		adj, err := s.applyAdjustment(ctx, tx, m, sku, a, now)
		if err != nil {
			return err
		}
		body, err = json.Marshal(adj)
		if err != nil {
			return fmt.Errorf("encoding stock adjustment: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys(key, request_hash, status, body, created_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET request_hash = excluded.request_hash,
			status = excluded.status, body = excluded.body, created_at = excluded.created_at`,
			key, hash, 201, body, now.Format(tsLayout)); err != nil {
			return fmt.Errorf("remembering idempotency key: %w", err)
		}
		out = storedResponse{status: 201, body: body}
		return nil
	})
	return out, err
}

// applyAdjustment changes sku's stock by a.Delta in tx, records the
// adjustment and emits stock.changed. It refuses (422) stock below zero or
// above maxStock, and answers 404 for an unknown SKU.
func (s *Service) applyAdjustment(ctx context.Context, tx *sql.Tx, m reqMeta, sku string, a adjustment, now time.Time) (StockAdjustment, error) {
	p, err := getProduct(ctx, tx, sku)
	if errors.Is(err, errNoProduct) {
		return StockAdjustment{}, apierr.New(apierr.CodeNotFound, "no product with SKU %s", sku)
	}
	if err != nil {
		return StockAdjustment{}, err
	}
	after := p.Stock + a.Delta
	if after < 0 {
		return StockAdjustment{}, apierr.New(apierr.CodeOutOfStock, "only %d of %s in stock, cannot take %d", p.Stock, sku, -a.Delta).
			WithDetails(map[string]any{"sku": sku, "requested": -a.Delta, "available": p.Stock})
	}
	if after > maxStock {
		return StockAdjustment{}, apierr.New(apierr.CodeBusinessRule, "stock of %s would exceed %d", sku, maxStock)
	}
	adj := StockAdjustment{ID: uuid.NewString(), SKU: sku, Delta: a.Delta, Reason: a.Reason, Reference: a.Reference,
		StockBefore: p.Stock, StockAfter: after, Version: p.Version + 1, CreatedAt: now}
	ts := now.Format(tsLayout)
	// The stock guard in WHERE is redundant with the check above under
	// the single writer; it keeps the invariant if that ever changes.
	r, err := tx.ExecContext(ctx, `UPDATE products SET stock = stock + ?, version = version + 1, updated_at = ?
		WHERE sku = ? AND version = ? AND stock + ? >= 0`, a.Delta, ts, sku, p.Version, a.Delta)
	if err != nil {
		return StockAdjustment{}, fmt.Errorf("adjusting stock of %s: %w", sku, err)
	}
	if n, err := r.RowsAffected(); err != nil || n != 1 {
		return StockAdjustment{}, fmt.Errorf("adjusting stock of %s: %d rows changed (%v)", sku, n, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO stock_adjustments
		(id, sku, delta, reason, reference, stock_before, stock_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		adj.ID, sku, a.Delta, a.Reason, a.Reference, p.Stock, after, ts); err != nil {
		return StockAdjustment{}, fmt.Errorf("recording stock adjustment: %w", err)
	}
	if err := s.emit(ctx, tx, m, EventStockChanged, sku, StockChanged{
		SKU: sku, Delta: a.Delta, StockBefore: p.Stock, StockAfter: after,
		Reason: a.Reason, Reference: a.Reference, Version: adj.Version,
	}, now); err != nil {
		return StockAdjustment{}, err
	}
	return adj, nil
}

// requestHash identifies what a stock adjustment asks for, independent of
// JSON spelling (whitespace, key order), so a retry with a re-encoded body
// still replays.
func requestHash(sku string, a adjustment) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s", sku, strconv.FormatInt(a.Delta, 10), a.Reason, a.Reference)
	return hex.EncodeToString(h.Sum(nil))
}

// pruneIdempotencyKeys forgets keys older than the TTL; lookups ignore them
// anyway, this only bounds the table.
func (s *Service) pruneIdempotencyKeys(ctx context.Context) (int64, error) {
	cutoff := s.now().UTC().Add(-s.cfg.IdempotencyTTL).Format(tsLayout)
	r, err := s.db.W.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE created_at <= ?`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("pruning idempotency keys: %w", err)
	}
	return r.RowsAffected()
}
