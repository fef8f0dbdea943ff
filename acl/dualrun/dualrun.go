// Package dualrun keeps the legacy shop and the new services in step while
// both take traffic during a migration.
//
//   - legacy -> new: the legacy's change feeds (export/products.do,
//     export/orders.do) are read from a checkpoint; products are upserted
//     into the catalog with PUT /api/v1/products/{sku}, orders into the
//     order service with UpsertFromLegacy, both keyed by the legacy id, so
//     replaying a page changes nothing.
//   - new -> legacy: the order service's outbox (GET /api/v1/events) is
//     read from a checkpoint; order.created is placed in the legacy with
//     ext_ref = the new orderId (the legacy replays a repeated ext_ref, so a
//     retry never books twice), and pay/ship/cancel follow.
//
// The loop trap: a written-back order reappears in the legacy's feed. It is
// recognised by its ext_ref (a new orderId) and linked to the existing order,
// never created a second time. Orders copied from the legacy are upserted
// without events, so they are never written back.
//
// Checkpoints and links live in the sync's own SQLite file and survive a
// restart; every step is idempotent, so a crash between a write and its
// checkpoint only repeats work.
package dualrun

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ficus-gw/ficus/acl"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
	"github.com/ficus-gw/ficus/newsvc/order"
)

// OrderUpserter is what the sync needs from the order service for orders
// that originate in the legacy; *order.Service implements it.
type OrderUpserter interface {
	UpsertFromLegacy(ctx context.Context, lo order.LegacyOrder) error
}

// LegacyLinker is implemented by an order service that can record the
// legacy order number of an order placed on the new side once its
// write-back reached the legacy (shown as legacyOrderNo). It is optional:
// without it the link is kept in the sync's own database only.
type LegacyLinker interface {
	LinkLegacyOrder(ctx context.Context, orderID, legacyOrderNo string) error
}

// Config configures a Syncer. Zero values mean the defaults named on each
// field.
type Config struct {
	// DBPath is the sync's own SQLite file (checkpoints, links, skipped
	// entities); created when absent. Required.
	DBPath string
	// LegacyURL is the legacy shop's root, e.g. http://127.0.0.1:8081.
	// Required.
	LegacyURL string
	// CatalogURL is the catalog service's root, e.g. http://127.0.0.1:8082.
	// Required.
	CatalogURL string
	// OrderURL is the order service's root, e.g. http://127.0.0.1:8083.
	// Required.
	OrderURL string
	// Orders receives legacy orders. Required.
	Orders OrderUpserter
	// Location is the zone of the legacy's local times. nil means
	// Europe/Berlin.
	Location *time.Location
	// Client tunes the legacy client; its BaseURL is set from LegacyURL.
	Client acl.ClientConfig
	// BatchSize is the page size read from each feed (1-1000). 0 means 100.
	BatchSize int
	// PollInterval is how long Run waits between passes once caught up.
	// 0 means 2s.
	PollInterval time.Duration
	// HTTPClient calls the catalog and order services. nil means a client
	// with a 10s timeout.
	HTTPClient *http.Client
	// Now is the clock for the database's bookkeeping timestamps. nil means
	// time.Now.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultBatchSize    = 100
	DefaultPollInterval = 2 * time.Second
)

// Feed names, also the checkpoint keys.
const (
	FeedLegacyProducts = "legacy.products"
	FeedLegacyOrders   = "legacy.orders"
	FeedNewOrders      = "new.orders"
)

func (c Config) withDefaults() (Config, error) {
	var errs []error
	for name, v := range map[string]string{"DBPath": c.DBPath, "LegacyURL": c.LegacyURL, "CatalogURL": c.CatalogURL, "OrderURL": c.OrderURL} {
		if v == "" {
			errs = append(errs, fmt.Errorf("dualrun: %s is required", name))
		}
	}
	if c.Orders == nil {
		errs = append(errs, errors.New("dualrun: Orders is required"))
	}
	if c.BatchSize < 0 || c.BatchSize > 1000 {
		errs = append(errs, fmt.Errorf("dualrun: BatchSize %d is outside 0..1000", c.BatchSize))
	}
	if c.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("dualrun: PollInterval %v is negative", c.PollInterval))
	}
	if len(errs) > 0 {
		return c, errors.Join(errs...)
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.CatalogURL = strings.TrimSuffix(c.CatalogURL, "/")
	c.OrderURL = strings.TrimSuffix(c.OrderURL, "/")
	c.Client.BaseURL = c.LegacyURL
	return c, nil
}

// legacyShop is what the sync needs from the legacy; *acl.Client
// implements it.
type legacyShop interface {
	ProductsSince(ctx context.Context, since int64, max int) (acl.Export, error)
	OrdersSince(ctx context.Context, since int64, max int) (acl.Export, error)
	Order(ctx context.Context, ordNo string) (acl.Auftrag, error)
	PlaceOrder(ctx context.Context, f acl.PlaceOrderForm) (acl.Auftrag, error)
	Transition(ctx context.Context, a acl.Action, ordNo string) (acl.Auftrag, error)
}

var (
	_ legacyShop    = (*acl.Client)(nil)
	_ OrderUpserter = (*order.Service)(nil)
)

// Syncer runs the dual-run sync. Its methods may be called from several
// goroutines, but passes never overlap: each takes the Syncer's lock.
type Syncer struct {
	cfg    Config
	log    *slog.Logger
	db     *sqlitedb.DB
	legacy legacyShop
	tr     acl.Translator
	mu     sync.Mutex
}

// Open opens (creating and migrating) the sync's database. Nothing runs
// until Backfill, SyncOnce or Run is called. A nil log discards logs.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Syncer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "dualrun")
	tr, err := acl.NewTranslator(cfg.Location)
	if err != nil {
		return nil, err
	}
	client, err := acl.NewClient(cfg.Client, log)
	if err != nil {
		return nil, fmt.Errorf("dualrun: %w", err)
	}
	db, err := sqlitedb.Open(cfg.DBPath)
	if err != nil {
		return nil, fmt.Errorf("dualrun: %w", err)
	}
	if err := db.Migrate(ctx, migrations); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("dualrun: %w", err)
	}
	return &Syncer{cfg: cfg, log: log, db: db, legacy: client, tr: tr}, nil
}

// Close closes the database. Stop Run (cancel its context) first.
func (s *Syncer) Close() error { return s.db.Close() }

var migrations = []sqlitedb.Migration{{
	Name: "checkpoints, order links, skipped entities",
	SQL: `CREATE TABLE checkpoint (
	feed       TEXT PRIMARY KEY,
	seq        INTEGER NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE TABLE order_link (
	order_id   TEXT PRIMARY KEY,
	ord_no     TEXT UNIQUE,
	origin     TEXT NOT NULL CHECK (origin IN ('legacy', 'new')),
	updated_at TEXT NOT NULL
);
CREATE TABLE skipped (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	feed   TEXT NOT NULL,
	entity TEXT NOT NULL,
	reason TEXT NOT NULL,
	at     TEXT NOT NULL
);`,
}}

// Progress reports a backfill's advance after each page.
type Progress struct {
	// Feed is FeedLegacyProducts or FeedLegacyOrders.
	Feed string
	// Entries is how many entries of Feed this backfill has processed.
	Entries int
	// Checkpoint is the feed sequence reached.
	Checkpoint int64
	// Done is true on the feed's last page.
	Done bool
}

// Stats counts what one pass did.
type Stats struct {
	// Products upserted into the catalog.
	Products int
	// Orders upserted into the order service from the legacy.
	Orders int
	// Linked counts legacy feed entries recognised as written-back orders.
	Linked int
	// WrittenBack counts orders placed in the legacy for the new side.
	WrittenBack int
	// Transitions counts status changes applied to the other side.
	Transitions int
	// Skipped counts entities that cannot be synced (see Skipped).
	Skipped int
}

func (a *Stats) add(b Stats) {
	a.Products += b.Products
	a.Orders += b.Orders
	a.Linked += b.Linked
	a.WrittenBack += b.WrittenBack
	a.Transitions += b.Transitions
	a.Skipped += b.Skipped
}

// Backfill copies everything the legacy's feeds hold after the stored
// checkpoints (everything, on the first run) into the new services, page by
// page, calling progress (may be nil) and logging after each page. It
// returns when both feeds are drained. It is the first step of Run; call it
// alone to watch a first migration.
func (s *Syncer) Backfill(ctx context.Context, progress func(Progress)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.backfill(ctx, progress)
	return err
}

func (s *Syncer) backfill(ctx context.Context, progress func(Progress)) (Stats, error) {
	var total Stats
	for _, feed := range []string{FeedLegacyProducts, FeedLegacyOrders} {
		entries := 0
		st, err := s.drainLegacy(ctx, feed, func(n int, cp int64, more bool) {
			entries += n
			p := Progress{Feed: feed, Entries: entries, Checkpoint: cp, Done: !more}
			if n > 0 || progress != nil { // a steady-state pass with nothing new stays quiet
				s.log.Info("sync progress", "feed", feed, "entries", entries, "checkpoint", cp, "done", !more)
			}
			if progress != nil {
				progress(p)
			}
		})
		total.add(st)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// SyncOnce drains every feed once: legacy products, legacy orders, then the
// order service's events. Tests drive the sync step by step with it.
func (s *Syncer) SyncOnce(ctx context.Context) (Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.backfill(ctx, nil)
	if err != nil {
		return st, err
	}
	wb, err := s.drainNew(ctx)
	st.add(wb)
	return st, err
}

// Run backfills, then keeps both sides in step, one pass every
// PollInterval, until ctx is done; it then returns nil. A failed pass is
// logged and retried on the next tick: the checkpoints make that safe.
func (s *Syncer) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		st, err := s.SyncOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.log.Error("sync pass failed; retrying", "err", err)
		case st != Stats{}:
			s.log.Info("sync pass", "products", st.Products, "orders", st.Orders, "linked", st.Linked,
				"written_back", st.WrittenBack, "transitions", st.Transitions, "skipped", st.Skipped)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Checkpoint returns the stored position of feed (0 when it never ran).
func (s *Syncer) Checkpoint(ctx context.Context, feed string) (int64, error) {
	var seq int64
	err := s.db.R.QueryRowContext(ctx, `SELECT seq FROM checkpoint WHERE feed = ?`, feed).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return seq, err
}

func (s *Syncer) setCheckpoint(ctx context.Context, feed string, seq int64) error {
	_, err := s.db.W.ExecContext(ctx, `INSERT INTO checkpoint (feed, seq, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (feed) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`, feed, seq, s.stamp())
	if err != nil {
		return fmt.Errorf("storing checkpoint of %s: %w", feed, err)
	}
	return nil
}

func (s *Syncer) stamp() string { return s.cfg.Now().UTC().Format(time.RFC3339Nano) }

// Skip is an entity the sync could not copy and moved past, so that one bad
// entity does not stall a feed. Reconcile shows its effect; fix the cause
// and copy it by hand (or reset the feed's checkpoint).
type Skip struct {
	Feed, Entity, Reason string
	At                   time.Time
}

// Skipped lists what the sync skipped, oldest first.
func (s *Syncer) Skipped(ctx context.Context) ([]Skip, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT feed, entity, reason, at FROM skipped ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Skip
	for rows.Next() {
		var k Skip
		var at string
		if err := rows.Scan(&k.Feed, &k.Entity, &k.Reason, &at); err != nil {
			return nil, err
		}
		k.At, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, k)
	}
	return out, rows.Err()
}

func (s *Syncer) skip(ctx context.Context, feed, entity string, reason error) error {
	s.log.Error("sync skipped an entity it cannot copy", "feed", feed, "entity", entity, "err", reason)
	_, err := s.db.W.ExecContext(ctx, `INSERT INTO skipped (feed, entity, reason, at) VALUES (?, ?, ?, ?)`,
		feed, entity, reason.Error(), s.stamp())
	return err
}

// link records that orderID and the legacy's ordNo are the same order.
func (s *Syncer) link(ctx context.Context, orderID, ordNo, origin string) error {
	_, err := s.db.W.ExecContext(ctx, `INSERT INTO order_link (order_id, ord_no, origin, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (order_id) DO UPDATE SET ord_no = excluded.ord_no, updated_at = excluded.updated_at`,
		orderID, ordNo, origin, s.stamp())
	if err != nil {
		return fmt.Errorf("linking order %s to legacy %s: %w", orderID, ordNo, err)
	}
	return nil
}

func (s *Syncer) linked(ctx context.Context, orderID string) (ordNo, origin string, ok bool, err error) {
	var no sql.NullString
	err = s.db.R.QueryRowContext(ctx, `SELECT ord_no, origin FROM order_link WHERE order_id = ?`, orderID).Scan(&no, &origin)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", false, nil
	}
	return no.String, origin, err == nil, err
}

// drainLegacy reads one legacy feed from its checkpoint until no more
// entries wait, applying each page before storing the page's checkpoint.
func (s *Syncer) drainLegacy(ctx context.Context, feed string, page func(n int, cp int64, more bool)) (Stats, error) {
	var st Stats
	cp, err := s.Checkpoint(ctx, feed)
	if err != nil {
		return st, err
	}
	for {
		var e acl.Export
		var typ string
		if feed == FeedLegacyProducts {
			e, err = s.legacy.ProductsSince(ctx, cp, s.cfg.BatchSize)
			typ = "artikel"
		} else {
			e, err = s.legacy.OrdersSince(ctx, cp, s.cfg.BatchSize)
			typ = "auftraege"
		}
		if err != nil {
			return st, fmt.Errorf("reading %s after %d: %w", feed, cp, err)
		}
		p, err := acl.Feed(e, typ)
		if err != nil {
			return st, fmt.Errorf("reading %s after %d: %w", feed, cp, err)
		}
		for _, a := range e.Artikel {
			if err := s.copyProduct(ctx, a, &st); err != nil {
				return st, err
			}
		}
		for _, a := range e.Auftraege {
			if err := s.copyOrder(ctx, a, &st); err != nil {
				return st, err
			}
		}
		if err := s.setCheckpoint(ctx, feed, p.Next); err != nil {
			return st, err
		}
		cp = p.Next
		if page != nil {
			page(len(e.Artikel)+len(e.Auftraege), cp, p.More)
		}
		if !p.More {
			return st, nil
		}
	}
}

// errPermanent marks an answer that retrying cannot change.
var errPermanent = errors.New("permanent failure")

// copyProduct upserts one legacy article into the catalog.
func (s *Syncer) copyProduct(ctx context.Context, a acl.Artikel, st *Stats) error {
	p, err := s.tr.Product(a)
	if err != nil {
		st.Skipped++
		return s.skip(ctx, FeedLegacyProducts, strings.TrimSpace(a.ArtNr), err)
	}
	body, _ := json.Marshal(map[string]any{ // strings, ints: cannot fail
		"name": p.Name, "description": p.Description, "category": p.Category,
		"price": p.Price, "stock": p.Stock,
	})
	_, err = s.call(ctx, http.MethodPut, s.cfg.CatalogURL+"/api/v1/products/"+url.PathEscape(p.SKU), body)
	if errors.Is(err, errPermanent) {
		st.Skipped++
		return s.skip(ctx, FeedLegacyProducts, p.SKU, err)
	}
	if err != nil {
		return err
	}
	st.Products++
	return nil
}

// copyOrder brings one legacy order to the new side: a written-back order
// (ext_ref = an orderId the order service has) is linked, and legacy status
// changes to it are applied through the order service's API; any other is
// upserted by legacy order number.
func (s *Syncer) copyOrder(ctx context.Context, a acl.Auftrag, st *Stats) error {
	o, err := s.tr.Order(a)
	if err != nil {
		st.Skipped++
		return s.skip(ctx, FeedLegacyOrders, strings.TrimSpace(a.OrdNo), err)
	}
	if acl.IsWriteBackRef(a.ExtRef) {
		cur, found, err := s.newOrder(ctx, o.ID)
		if err != nil {
			return err
		}
		if found {
			st.Linked++
			return s.linkWriteBack(ctx, o, cur, st)
		}
	}
	lo := order.LegacyOrder{
		LegacyOrderNo: o.LegacyOrderNo, CustomerID: o.CustomerID, Status: order.Status(o.Status),
		Currency: o.Currency, PlacedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, ExtRef: strings.TrimSpace(a.ExtRef),
	}
	for _, l := range o.Lines {
		lo.Lines = append(lo.Lines, order.LegacyLine{Sku: l.Sku, Name: l.Name, Quantity: l.Quantity, UnitPriceMinor: l.UnitPrice.AmountMinor})
	}
	if err := s.cfg.Orders.UpsertFromLegacy(ctx, lo); err != nil {
		if errors.Is(err, order.ErrInvalidLegacyOrder) {
			st.Skipped++
			return s.skip(ctx, FeedLegacyOrders, o.LegacyOrderNo, err)
		}
		return fmt.Errorf("upserting legacy order %s: %w", o.LegacyOrderNo, err)
	}
	st.Orders++
	return s.link(ctx, acl.LegacyOrderID(o.LegacyOrderNo), o.LegacyOrderNo, "legacy")
}

func (s *Syncer) linkWriteBack(ctx context.Context, legacy, cur acl.Order, st *Stats) error {
	if err := s.link(ctx, legacy.ID, legacy.LegacyOrderNo, "new"); err != nil {
		return err
	}
	if l, ok := s.cfg.Orders.(LegacyLinker); ok && cur.LegacyOrderNo == "" {
		if err := l.LinkLegacyOrder(ctx, legacy.ID, legacy.LegacyOrderNo); err != nil {
			return fmt.Errorf("linking order %s to legacy %s: %w", legacy.ID, legacy.LegacyOrderNo, err)
		}
	}
	// Someone changed the order in the legacy (its screens still work):
	// apply the change on the new side, which owns the order. Only forward
	// moves are applied; an older feed entry never moves an order back.
	for _, a := range []acl.Action{acl.ActionPay, acl.ActionShip, acl.ActionCancel} {
		if to, ok := nextStatus(cur.Status, a); ok && to == legacy.Status {
			if _, err := s.call(ctx, http.MethodPost, s.cfg.OrderURL+"/api/v1/orders/"+url.PathEscape(cur.ID)+"/"+string(a), nil); err != nil {
				if errors.Is(err, errPermanent) {
					st.Skipped++
					return s.skip(ctx, FeedLegacyOrders, legacy.LegacyOrderNo, err)
				}
				return err
			}
			st.Transitions++
		}
	}
	return nil
}

func nextStatus(s acl.Status, a acl.Action) (acl.Status, bool) {
	switch {
	case s == acl.StatusPlaced && a == acl.ActionPay:
		return acl.StatusPaid, true
	case s == acl.StatusPaid && a == acl.ActionShip:
		return acl.StatusShipped, true
	case (s == acl.StatusPlaced || s == acl.StatusPaid) && a == acl.ActionCancel:
		return acl.StatusCancelled, true
	}
	return "", false
}

// newOrder reads an order from the order service's API.
func (s *Syncer) newOrder(ctx context.Context, id string) (acl.Order, bool, error) {
	body, err := s.call(ctx, http.MethodGet, s.cfg.OrderURL+"/api/v1/orders/"+url.PathEscape(id), nil)
	var he *httpStatusError
	if errors.As(err, &he) && he.status == http.StatusNotFound {
		return acl.Order{}, false, nil
	}
	if err != nil {
		return acl.Order{}, false, err
	}
	var o acl.Order
	if err := json.Unmarshal(body, &o); err != nil {
		return acl.Order{}, false, fmt.Errorf("reading order %s: %w", id, err)
	}
	return o, true, nil
}

type httpStatusError struct {
	status int
	body   string
}

func (e *httpStatusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

// call sends one request to a new service. A 4xx answer is permanent
// (wrapping errPermanent and *httpStatusError); transport errors and 5xx
// are not, and make the pass stop and retry later.
func (s *Syncer) call(ctx context.Context, method, u string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Request-Id", "sync-"+uuid.NewString())
	res, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading answer: %w", method, u, err)
	}
	switch {
	case res.StatusCode >= 500 || res.StatusCode == http.StatusTooManyRequests:
		return nil, fmt.Errorf("%s %s: %w", method, u, &httpStatusError{res.StatusCode, truncate(data)})
	case res.StatusCode >= 400:
		return nil, fmt.Errorf("%s %s: %w: %w", method, u, errPermanent, &httpStatusError{res.StatusCode, truncate(data)})
	}
	return data, nil
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// event is the part of the order service's event envelope the write-back
// reads; Data is the Order after the change.
type event struct {
	Seq  int64     `json:"seq"`
	Type string    `json:"type"`
	Data acl.Order `json:"data"`
}

// actionTarget is the status each action leads to.
var actionTarget = map[acl.Action]acl.Status{
	acl.ActionPay:    acl.StatusPaid,
	acl.ActionShip:   acl.StatusShipped,
	acl.ActionCancel: acl.StatusCancelled,
}

var eventActions = map[string]acl.Action{
	"order.paid":      acl.ActionPay,
	"order.shipped":   acl.ActionShip,
	"order.cancelled": acl.ActionCancel,
}

// drainNew reads the order service's events from the checkpoint and writes
// each order change back to the legacy.
func (s *Syncer) drainNew(ctx context.Context) (Stats, error) {
	var st Stats
	cp, err := s.Checkpoint(ctx, FeedNewOrders)
	if err != nil {
		return st, err
	}
	for {
		body, err := s.call(ctx, http.MethodGet, s.cfg.OrderURL+"/api/v1/events?after="+strconv.FormatInt(cp, 10)+"&limit="+strconv.Itoa(s.cfg.BatchSize), nil)
		if err != nil {
			return st, fmt.Errorf("reading order events after %d: %w", cp, err)
		}
		var page struct {
			Events []event `json:"events"`
			Next   int64   `json:"next"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return st, fmt.Errorf("reading order events after %d: %w", cp, err)
		}
		for _, ev := range page.Events {
			if err := s.writeBack(ctx, ev, &st); err != nil {
				return st, err
			}
			if err := s.setCheckpoint(ctx, FeedNewOrders, ev.Seq); err != nil {
				return st, err
			}
			cp = ev.Seq
		}
		if len(page.Events) < s.cfg.BatchSize {
			return st, nil
		}
	}
}

// writeBack applies one order event to the legacy.
func (s *Syncer) writeBack(ctx context.Context, ev event, st *Stats) error {
	o := ev.Data
	entity := o.ID
	if ev.Type == "order.created" {
		if o.LegacyOrderNo != "" {
			return nil // a legacy order: it is there already
		}
		if _, _, ok, err := s.linked(ctx, o.ID); err != nil || ok {
			return err // written back before (a replayed event)
		}
		f := acl.PlaceOrderForm{CustNo: o.CustomerID, ExtRef: o.ID}
		for _, l := range o.Lines {
			f.Items = append(f.Items, acl.Item{ArtNr: l.Sku, Qty: l.Quantity})
		}
		a, err := s.legacy.PlaceOrder(ctx, f)
		if err != nil {
			return s.legacyFailure(ctx, entity, err, st)
		}
		if err := s.link(ctx, o.ID, strings.TrimSpace(a.OrdNo), "new"); err != nil {
			return err
		}
		st.WrittenBack++
		s.log.Info("order written back to legacy", "order_id", o.ID, "ord_no", strings.TrimSpace(a.OrdNo))
		return nil
	}
	action, ok := eventActions[ev.Type]
	if !ok {
		return nil // an event type the legacy has no use for
	}
	ordNo := o.LegacyOrderNo
	if ordNo == "" {
		no, _, ok, err := s.linked(ctx, o.ID)
		if err != nil {
			return err
		}
		if !ok {
			st.Skipped++
			return s.skip(ctx, FeedNewOrders, entity, fmt.Errorf("%s for an order that never reached the legacy", ev.Type))
		}
		ordNo = no
	}
	cur, err := s.legacy.Order(ctx, ordNo)
	if err != nil {
		return s.legacyFailure(ctx, entity, err, st)
	}
	now, err := acl.StatusFromLegacy(cur.StsCd, cur.StsTxt)
	if err != nil {
		st.Skipped++
		return s.skip(ctx, FeedNewOrders, entity, err)
	}
	if now == actionTarget[action] {
		return nil // already there (replayed event, or the change came from the legacy)
	}
	if _, err := s.legacy.Transition(ctx, action, ordNo); err != nil {
		return s.legacyFailure(ctx, entity, err, st)
	}
	st.Transitions++
	return nil
}

// legacyFailure skips the entity on a business error (retrying cannot
// change the answer) and stops the pass on unavailability.
func (s *Syncer) legacyFailure(ctx context.Context, entity string, err error, st *Stats) error {
	var le *acl.LegacyError
	if errors.As(err, &le) || errors.Is(err, acl.ErrUnknownValue) || errors.Is(err, acl.ErrInvalidValue) {
		st.Skipped++
		return s.skip(ctx, FeedNewOrders, entity, err)
	}
	return fmt.Errorf("writing order %s back to the legacy: %w", entity, err)
}
