package order

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/sony/gobreaker/v2"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/contracts/api"
	"github.com/ficus-gw/ficus/internal/reqlog"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
	"github.com/ficus-gw/ficus/newsvc/outbox"
)

// eventSchemaVersion is the version of the data of every order.* event: the
// Order representation of openapi.yaml. Bump it (and keep emitting the old
// one while consumers move) only for a breaking change to that shape.
const eventSchemaVersion = 1

// Reasons of stock adjustments, from the Catalog's closed list.
const (
	reasonReserved = "order-reserved"
	reasonReleased = "order-released"
)

// releaseRetryInterval is how often Run retries stock releases that the
// Catalog did not acknowledge at once.
const releaseRetryInterval = 5 * time.Second

// Service is the Order service: its database, its Catalog client, its HTTP
// app and its outbox dispatcher. Build it with Open, serve App, run Run in
// the background, and Close it when done.
type Service struct {
	cfg        Config
	log        *slog.Logger
	reqlog     *reqlog.Logger // request lines: debug, failures rate-limited
	db         *sqlitedb.DB
	catalog    *catalogClient
	dispatcher *outbox.Dispatcher
	limiter    *admission // nil when rate limiting is disabled
	app        *fiber.App
	metrics    *metrics

	mu       sync.Mutex
	inflight map[string]chan struct{} // Idempotency-Key -> closed when its owner finishes
}

// Open opens (creating and migrating) the service's database and builds its
// HTTP app. Nothing listens and no event is delivered until the caller
// serves App and runs Run. A nil log discards logs.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", "order")
	db, err := sqlitedb.Open(cfg.DBPath)
	if err != nil {
		return nil, fmt.Errorf("order: %w", err)
	}
	if err := db.Migrate(ctx, migrations()); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("order: %w", err)
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s := &Service{
		cfg:      cfg,
		log:      log,
		reqlog:   reqlog.New(log),
		db:       db,
		catalog:  newCatalogClient(cfg, log, m),
		inflight: make(map[string]chan struct{}),
		metrics:  m,
	}
	s.limiter = newAdmission(cfg)
	obOpts := []outbox.Option{outbox.WithClock(cfg.Now), outbox.WithUpcasters(Upcasters()...)}
	if cfg.Metrics != nil {
		obOpts = append(obOpts, outbox.WithMetrics(cfg.Metrics, "orders"))
	}
	s.dispatcher = outbox.NewDispatcher(db, cfg.Subscribers, &http.Client{Timeout: 30 * time.Second},
		log.With("component", "outbox"), obOpts...)
	s.app = s.newApp()
	return s, nil
}

// App is the service's Fiber app (routes, error handler, middleware). The
// caller listens with it, e.g. app.Listen(DefaultAddr), and shuts it down
// before Close.
func (s *Service) App() *fiber.App { return s.app }

// Run delivers outbox events to the configured subscribers, resolves
// idempotency claims left pending beyond their lease (at start and every
// SweepInterval) and retries unacknowledged stock releases until ctx is done; then it returns nil. It
// returns an error at once when the subscribers are misconfigured.
func (s *Service) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.dispatcher.Run(ctx) }()
	s.sweep(ctx) // claims a killed process left behind
	t := time.NewTicker(releaseRetryInterval)
	defer t.Stop()
	sweep := time.NewTicker(s.cfg.SweepInterval)
	defer sweep.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	for {
		select {
		case <-prune.C:
			s.pruneKeys(ctx)
		case err := <-errc:
			if err != nil {
				return fmt.Errorf("order: outbox dispatcher: %w", err)
			}
			errc = nil // no subscribers: keep retrying releases until ctx is done
		case <-t.C:
			s.flushReleases(ctx, "")
		case <-sweep.C:
			s.sweep(ctx)
		case <-ctx.Done():
			if errc != nil {
				<-errc
			}
			return nil
		}
	}
}

// Close shuts the HTTP app down (when it is serving) and closes the
// database. Stop Run first by cancelling its context.
func (s *Service) Close() error {
	_ = s.app.ShutdownWithTimeout(5 * time.Second) // an error only says it was not serving
	s.catalog.close()
	return s.db.Close()
}

// pruneKeys forgets idempotency keys older than IdempotencyTTL.
func (s *Service) pruneKeys(ctx context.Context) {
	n, err := pruneKeys(ctx, s.db.W, s.cfg.Now().Add(-s.cfg.IdempotencyTTL))
	if err != nil {
		s.log.Error("pruning idempotency keys", "err", err)
	} else if n > 0 {
		s.log.Info("pruned idempotency keys", "count", n)
	}
}

// PlaceRequest is the body of POST /api/v1/orders, the contract's
// PlaceOrderRequest with its Validate and Hash.
type (
	PlaceRequest = api.PlaceRequest
	PlaceItem    = api.PlaceItem
)

// unavailable reports whether err means the Catalog could not answer.
func unavailable(err error) bool {
	var f *catalogFailure
	return errors.As(err, &f) || errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}

// placeOrder places an order once per Idempotency-Key. The key is claimed in
// a transaction before any side effect; a concurrent request with the same
// key waits (up to IdempotencyWait) for the owner to finish and then replays
// its reply, so N identical concurrent requests make one order and N
// identical responses.
func (s *Service) placeOrder(ctx context.Context, req PlaceRequest, key, requestID string) (reply, error) {
	hash := req.Hash()
	deadline := time.Now().Add(s.cfg.IdempotencyWait)
	for {
		// Read on the reader pool first: a finished or busy key needs no
		// write lock, so waiting duplicates do not compete with the owner
		// for the single writer.
		rec, found, err := readKey(ctx, s.db.R, key)
		if err != nil {
			return reply{}, err
		}
		claimed := false
		if stale := found && !rec.done && s.cfg.Now().Sub(rec.claimedAt) > s.cfg.IdempotencyLease; !found || stale {
			err = s.db.Tx(ctx, func(tx *sql.Tx) error {
				var err error
				rec, claimed, err = claimKey(ctx, tx, key, hash, uuid.NewString(), s.cfg.Now(), s.cfg.IdempotencyLease)
				return err
			})
			if err != nil {
				return reply{}, err
			}
		}
		switch {
		case rec.hash != hash:
			return reply{}, apierr.New(apierr.CodeIdempotencyReused,
				"this Idempotency-Key was used with a different request body; use a new key for a new order")
		case claimed:
			return s.placeClaimed(ctx, req, key, rec, requestID)
		case rec.done:
			s.metrics.replays.Inc()
			return rec.reply, nil
		}
		if !s.waitForKey(ctx, key, deadline) {
			e := apierr.New(apierr.CodeIdempotencyBusy, "a request with this Idempotency-Key is still being processed; retry later")
			e.RetryAfter = 1
			return reply{}, e
		}
	}
}

// waitForKey blocks until the in-process owner of key finishes, or briefly
// when the owner is another process (or has not registered yet). It returns
// false when deadline has passed or ctx is done.
func (s *Service) waitForKey(ctx context.Context, key string, deadline time.Time) bool {
	left := time.Until(deadline)
	if left <= 0 {
		return false
	}
	s.mu.Lock()
	done := s.inflight[key] // nil blocks forever in select: then the timer decides
	s.mu.Unlock()
	t := time.NewTimer(min(left, 20*time.Millisecond))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
		return false
	}
	return true
}

// placeClaimed does the work of a claimed key: validate against the
// Catalog, reserve stock line by line, then write the order, its event and
// the idempotent reply in one transaction. Any failure after a reservation
// was sent queues a release of every reservation made under the order id
// (by reference, so a reservation whose answer was lost is released too)
// and drops the claim, so nothing is half-written and no stock stays held.
func (s *Service) placeClaimed(ctx context.Context, req PlaceRequest, key string, claim idemRecord, requestID string) (r reply, err error) {
	orderID := claim.orderID
	done := make(chan struct{})
	s.mu.Lock()
	s.inflight[key] = done
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.inflight, key)
		s.mu.Unlock()
		close(done)
	}()
	// The work must end well inside the lease, or a retry could take over a
	// claim that is still being worked on.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.IdempotencyLease/2)
	defer cancel()

	now := s.cfg.Now().UTC()
	o, err := s.priceOrder(ctx, req, orderID, requestID, false)
	if err != nil {
		s.abandon(key, claim, false, requestID)
		return reply{}, err
	}
	o.CreatedAt, o.UpdatedAt, o.Status, o.Version = now, now, StatusPlaced, 1
	o.intentRef = IntentRef(key)
	sent, err := s.reserve(ctx, o, requestID)
	if err != nil {
		s.abandon(key, claim, sent, requestID)
		return reply{}, err
	}
	body, err := json.Marshal(o)
	if err != nil {
		s.abandon(key, claim, true, requestID)
		return reply{}, fmt.Errorf("encoding order: %w", err)
	}
	r = reply{status: fiber.StatusCreated, location: "/api/v1/orders/" + o.ID, body: body}
	replayed := false
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		cur, found, err := readKey(ctx, tx, key)
		if err != nil {
			return err
		}
		if !found || cur.orderID != orderID {
			return fmt.Errorf("idempotency key %q was dropped while order %s was being placed", key, orderID)
		}
		if cur.done { // a takeover finished first; its reservations are ours (same keys)
			r = cur.reply
			replayed = true
			return nil
		}
		if err := insertOrder(ctx, tx, &o); err != nil {
			return err
		}
		ev, err := outbox.New(eventType(StatusPlaced), eventSchemaVersion, o.ID, requestID, "", o, now)
		if err != nil {
			return err
		}
		if err := outbox.Append(ctx, tx, ev); err != nil {
			return err
		}
		return finishKey(ctx, tx, key, r)
	})
	if err != nil {
		s.abandon(key, claim, true, requestID)
		return reply{}, err
	}
	if replayed {
		return r, nil
	}
	s.metrics.placed.Inc()
	s.dispatcher.Kick()
	s.log.Info("order placed", "order_id", o.ID, "customer_id", o.CustomerID, "total_minor", o.Total.AmountMinor,
		"currency", o.Currency, "intent_ref", o.intentRef, "request_id", requestID)
	return r, nil
}

// abandon gives up a failed claim: it drops the claim (only if it is still
// this request's: a takeover owns the order id's reservations from then on)
// and, when a reservation may have reached the Catalog, queues the release
// of every reservation made under the order id in the same transaction.
// It uses a context of its own because the request's may be the reason for
// the failure.
func (s *Service) abandon(key string, claim idemRecord, release bool, requestID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var dropped bool
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if dropped, err = retireClaim(ctx, tx, key, claim.orderID, claim.claimedAt); err != nil {
			return err
		}
		if dropped && release {
			return queueReferenceRelease(ctx, tx, claim.orderID, causePlacementFailed, s.cfg.Now())
		}
		return nil
	})
	if err != nil {
		s.log.Error("could not drop a failed idempotency claim; the sweeper resolves it when its lease ends",
			"err", err, "order_id", claim.orderID, "request_id", requestID)
		return
	}
	if dropped && release {
		s.flushReleases(ctx, requestID)
	}
}

// itemProblem names one item the Catalog refused, for INVALID_ITEM details.
type itemProblem struct {
	Field  string `json:"field"`
	Sku    string `json:"sku"`
	Reason string `json:"reason"`
}

// priceOrder validates every item against the Catalog and snapshots its
// price. With checkStock (dry runs, which reserve nothing) it also compares
// the quantity with the stock the Catalog reports.
func (s *Service) priceOrder(ctx context.Context, req PlaceRequest, orderID, requestID string, checkStock bool) (Order, error) {
	o := Order{Order: api.Order{ID: orderID, CustomerID: req.CustomerID, Currency: req.Currency, Lines: make([]Line, 0, len(req.Items))}}
	var problems []itemProblem
	for i, it := range req.Items {
		p, err := s.catalog.product(ctx, it.Sku, requestID)
		field := fmt.Sprintf("items[%d].sku", i)
		switch {
		case errors.Is(err, errUnknownSku):
			problems = append(problems, itemProblem{Field: field, Sku: it.Sku, Reason: "no such product in the catalog"})
			continue
		case unavailable(err):
			return Order{}, s.catalog.unavailable(err, requestID)
		case err != nil:
			return Order{}, err
		}
		if o.Currency == "" {
			o.Currency = p.Price.Currency
		}
		if p.Price.Currency != o.Currency {
			problems = append(problems, itemProblem{Field: field, Sku: it.Sku,
				Reason: fmt.Sprintf("priced in %s, the order is in %s", p.Price.Currency, o.Currency)})
			continue
		}
		if checkStock && p.Stock < int64(it.Quantity) {
			return Order{}, apierr.New(apierr.CodeOutOfStock, "not enough stock of %s", it.Sku).
				WithDetails(map[string]any{"field": fmt.Sprintf("items[%d].quantity", i), "sku": it.Sku})
		}
		o.Lines = append(o.Lines, Line{Sku: it.Sku, Name: p.Name, Quantity: it.Quantity, UnitPrice: p.Price})
	}
	if len(problems) > 0 {
		return Order{}, apierr.New(apierr.CodeInvalidItem, "%d item(s) cannot be ordered", len(problems)).
			WithDetails(map[string]any{"field": problems[0].Field, "items": problems})
	}
	total, err := priceLines(o.Lines, o.Currency)
	if err != nil {
		return Order{}, apierr.New(apierr.CodeBusinessRule, "the order cannot be priced: %v", err)
	}
	o.Total = total
	return o, nil
}

// reserve takes each line's stock from the Catalog, in order. sent reports
// whether any reservation may have been applied: then a failure must release
// the order id's reservations by reference. A reservation whose outcome is
// unknown (timeout or transport error after sending, the caller gone) is one
// of those: the release by reference gives it back if the Catalog applied
// it, and refuses it if it arrives late.
func (s *Service) reserve(ctx context.Context, o Order, requestID string) (sent bool, err error) {
	for i, l := range o.Lines {
		err := s.catalog.adjustStock(ctx, l.Sku, -int64(l.Quantity), reasonReserved, o.ID, reserveKey(o.ID, l.Sku), requestID)
		switch {
		case err == nil:
			sent = true
			continue
		case errors.Is(err, errOutOfStock):
			return sent, apierr.New(apierr.CodeOutOfStock, "not enough stock of %s", l.Sku).
				WithDetails(map[string]any{"field": fmt.Sprintf("items[%d].quantity", i), "sku": l.Sku})
		case errors.Is(err, errUnknownSku):
			return sent, apierr.New(apierr.CodeInvalidItem, "%s was removed from the catalog", l.Sku).
				WithDetails(map[string]any{"field": fmt.Sprintf("items[%d].sku", i), "sku": l.Sku})
		case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
			return sent, s.catalog.unavailable(err, requestID) // not sent
		case errors.Is(err, errReferenceReleased):
			// The order id's reservations were released (its claim was
			// retired while this request still worked): nothing to book.
			e := apierr.New(apierr.CodeDependency, "the order could not be completed; retry")
			e.RetryAfter = 1
			return true, e
		}
		s.metrics.repairs.WithLabelValues(repairReservationUnknown).Inc()
		s.log.Warn("stock reservation outcome unknown; releasing the order's reservations by reference",
			"sku", l.Sku, "quantity", l.Quantity, "order_id", o.ID, "err", err, "request_id", requestID)
		if unavailable(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return true, s.catalog.unavailable(err, requestID)
		}
		return true, err
	}
	return sent, nil
}

func (s *Service) sendRelease(ctx context.Context, r release, requestID string) error {
	return s.catalog.adjustStock(ctx, r.sku, int64(r.quantity), reasonReleased, r.orderID, r.key, requestID)
}

// flushReleases sends queued stock releases and forgets those the Catalog
// acknowledged. Concurrent flushes may send one twice: the Catalog's
// Idempotency-Key makes that harmless.
func (s *Service) flushReleases(ctx context.Context, requestID string) {
	s.flushReferenceReleases(ctx, requestID)
	rs, err := pendingReleases(ctx, s.db.W, 100)
	if err != nil {
		s.log.Error("reading pending stock releases", "err", err, "request_id", requestID)
		return
	}
	for _, r := range rs {
		if err := s.sendRelease(ctx, r, requestID); err != nil {
			if errors.Is(err, errUnknownSku) {
				s.log.Warn("dropping stock release of a product the catalog no longer has", "sku", r.sku, "order_id", r.orderID)
			} else {
				s.metrics.releaseFailed.Inc()
				s.log.Warn("stock release not acknowledged; will retry", "sku", r.sku, "order_id", r.orderID,
					"err", err, "request_id", requestID)
				return
			}
		}
		if _, err := s.db.W.ExecContext(ctx, `DELETE FROM pending_releases WHERE idem_key = ?`, r.key); err != nil {
			s.log.Error("forgetting a sent stock release", "err", err, "request_id", requestID)
			return
		}
	}
}

// transition applies action to an order: status change, event and (for a
// cancellation) queued stock releases in one transaction. A dry run answers
// with the order as it would be and writes nothing.
func (s *Service) transition(ctx context.Context, id string, a Action, requestID string, dryRun bool) (Order, error) {
	now := s.cfg.Now().UTC()
	illegal := func(o Order) error {
		return apierr.New(apierr.CodeIllegalTransition, "cannot %s an order that is %s", a, o.Status).
			WithDetails(map[string]string{"status": string(o.Status), "action": string(a)})
	}
	if dryRun {
		o, err := getOrder(ctx, s.db.R, id)
		if err != nil {
			return Order{}, err
		}
		to, ok := Next(o.Status, a)
		if !ok {
			return Order{}, illegal(o)
		}
		o.Status, o.UpdatedAt, o.Version = to, now, o.Version+1
		return o, nil
	}
	var o Order
	var owed bool
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if o, err = getOrder(ctx, tx, id); err != nil {
			return err
		}
		to, ok := Next(o.Status, a)
		if !ok {
			return illegal(o)
		}
		if err := updateStatus(ctx, tx, &o, to, now); err != nil {
			return err
		}
		// Orders that came from the legacy reserved no stock in the Catalog.
		if to == StatusCancelled && o.LegacyOrderNo == "" {
			rs := make([]release, len(o.Lines))
			for i, l := range o.Lines {
				rs[i] = release{key: releaseKey(o.ID, l.Sku), sku: l.Sku, quantity: l.Quantity, orderID: o.ID}
			}
			if err := queueReleases(ctx, tx, rs, now); err != nil {
				return err
			}
			owed = len(rs) > 0
		}
		ev, err := outbox.New(eventType(to), eventSchemaVersion, o.ID, requestID, "", o, now)
		if err != nil {
			return err
		}
		return outbox.Append(ctx, tx, ev)
	})
	if err != nil {
		return Order{}, err
	}
	s.dispatcher.Kick()
	if owed {
		s.flushReleases(ctx, requestID)
	}
	s.log.Info("order "+string(a), "order_id", o.ID, "status", string(o.Status), "request_id", requestID)
	return o, nil
}
