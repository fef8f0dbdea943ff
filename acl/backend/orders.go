package backend

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/ficus-gw/ficus/acl"
	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/contracts/api"
)

// Limits of the order contract (newsvc/order openapi.yaml).
const (
	legacyMaxQty     = 999 // the legacy's own per-line cap
	maxIDLength      = api.MaxIDLength
	maxKeyLength     = api.MaxIdempotencyKeyLength
	maxJSONDepth     = 16
	defaultOrderPage = api.DefaultPageSize
	maxOrderPage     = api.MaxPageSize
	orderCursorPre   = "a1:"
	idempotencyHdr   = "Idempotency-Key"
	feedPageSize     = 500
	metaOrdersFeed   = "orders_feed"
)

type itemProblem struct {
	Field  string `json:"field"`
	Sku    string `json:"sku"`
	Reason string `json:"reason"`
}

// legacyForm checks what the contract allows but the legacy cannot hold and
// answers it as the order service would answer the same business facts:
// a SKU that is not an article number does not exist (INVALID_ITEM), a
// non-EUR order cannot be priced (INVALID_ITEM), a customer id that is not
// a legacy customer number is an unknown customer.
func legacyForm(r api.PlaceRequest, extRef string) (acl.PlaceOrderForm, error) {
	f := acl.PlaceOrderForm{CustNo: r.CustomerID, ExtRef: extRef}
	var problems []itemProblem
	for i, it := range r.Items {
		field := fmt.Sprintf("items[%d].sku", i)
		switch {
		case !acl.ValidArtNr(it.Sku):
			problems = append(problems, itemProblem{Field: field, Sku: it.Sku, Reason: "no such product in the catalog"})
		case r.Currency != "" && r.Currency != "EUR":
			problems = append(problems, itemProblem{Field: field, Sku: it.Sku, Reason: fmt.Sprintf("priced in EUR, the order is in %s", r.Currency)})
		case it.Quantity > legacyMaxQty:
			return f, apierr.New(apierr.CodeOutOfStock, "not enough stock of %s", it.Sku).
				WithDetails(map[string]any{"field": fmt.Sprintf("items[%d].quantity", i), "sku": it.Sku})
		}
		f.Items = append(f.Items, acl.Item{ArtNr: it.Sku, Qty: it.Quantity})
	}
	if len(problems) > 0 {
		return f, apierr.New(apierr.CodeInvalidItem, "%d item(s) cannot be ordered", len(problems)).
			WithDetails(map[string]any{"field": problems[0].Field, "items": problems})
	}
	if !digits(r.CustomerID) || len(r.CustomerID) > 32 {
		return f, apierr.New(apierr.CodeBusinessRule, "unknown customer %s", r.CustomerID).
			WithDetails(map[string]string{"field": "customerId"})
	}
	return f, nil
}

func digits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func validKey(k string) bool { return api.ValidIdempotencyKey(k) }

// decodeBody strictly decodes a JSON body into v, as the order service
// does: size cap, JSON media type, nesting cap, no unknown fields, one
// value. An empty body is accepted only when !required.
func (b *Backend) decodeBody(c *fiber.Ctx, v any, required bool) error {
	return apierr.DecodeJSON(c.Body(), c.Get(fiber.HeaderContentType),
		apierr.DecodeOptions{MaxBytes: b.cfg.MaxBodyBytes, MaxDepth: maxJSONDepth, Required: required}, v)
}

// stored is a remembered reply to POST /orders.
type stored struct {
	hash, location string
	status         int
	body           []byte
}

func (b *Backend) readKey(ctx context.Context, key string) (stored, bool, error) {
	var s stored
	err := b.db.R.QueryRowContext(ctx, `SELECT request_hash, status, location, body FROM idempotency WHERE key = ?`, key).
		Scan(&s.hash, &s.status, &s.location, &s.body)
	if errors.Is(err, sql.ErrNoRows) {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("reading idempotency key: %w", err)
	}
	return s, true, nil
}

func reused() error {
	return apierr.New(apierr.CodeIdempotencyReused,
		"this Idempotency-Key was used with a different request body; use a new key for a new order")
}

// placeOrder serves POST /api/v1/orders. Idempotency has two layers: the
// backend's own record (key -> request hash and reply) answers replays and
// reuse, and the key's derived ext_ref makes the legacy itself replay
// rather than book twice, which covers a crash between the legacy's answer
// and the record's commit, and concurrent duplicates.
func (b *Backend) placeOrder(c *fiber.Ctx) error {
	key := c.Get(idempotencyHdr)
	if key == "" {
		return apierr.New(apierr.CodeIdempotencyMissing, "send an Idempotency-Key header so that retries cannot place the order twice")
	}
	if !validKey(key) {
		return apierr.Validation([]apierr.Violation{{Field: idempotencyHdr, Message: fmt.Sprintf("must be 1 to %d printable ASCII characters", maxKeyLength)}})
	}
	key = strings.Clone(key)
	var req api.PlaceRequest
	if err := b.decodeBody(c, &req, true); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return apierr.Contract(err)
	}
	form, err := legacyForm(req, acl.ExtRefForKey(key))
	if err != nil {
		return err
	}
	if isShadow(c) {
		return b.dryRunPlace(c, req)
	}
	hash := req.Hash()
	if s, ok, err := b.readKey(c.UserContext(), key); err != nil {
		return err
	} else if ok {
		if s.hash != hash {
			return reused()
		}
		b.metrics.replayed()
		return replay(c, s)
	}
	a, err := b.legacy.PlaceOrder(ctx(c), form)
	if err != nil {
		return b.legacyError(c, acl.OpPlaceOrder, err)
	}
	o, err := b.tr.Order(a)
	if err != nil {
		return b.legacyError(c, acl.OpPlaceOrder, err)
	}
	if again, _ := acl.IsReplay(a); again && !sameOrder(o, req) {
		// The legacy replayed an order placed under this key with other
		// content: a concurrent request with a different body won.
		return reused()
	}
	body, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encoding order: %w", err)
	}
	s := stored{hash: hash, status: fiber.StatusCreated, location: "/api/v1/orders/" + o.ID, body: body}
	err = b.db.Tx(c.UserContext(), func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(c.UserContext(), `INSERT OR IGNORE INTO idempotency (key, request_hash, status, location, body, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, key, s.hash, s.status, s.location, s.body, b.cfg.Now().UTC().Format(stampLayout)); err != nil {
			return err
		}
		return indexOrder(c.UserContext(), tx, o.ID, o.LegacyOrderNo)
	})
	if err != nil {
		return fmt.Errorf("remembering idempotency key: %w", err)
	}
	// A concurrent duplicate may have committed first: answer what is
	// stored, so every response for a key is the same, byte for byte.
	if cur, ok, err := b.readKey(c.UserContext(), key); err != nil {
		return err
	} else if ok {
		if cur.hash != hash {
			return reused()
		}
		s = cur
	}
	b.log.Info("order placed in legacy", "order_id", o.ID, "ord_no", o.LegacyOrderNo, "customer_id", o.CustomerID,
		"request_id", apierr.RequestID(c))
	return replay(c, s)
}

func replay(c *fiber.Ctx, s stored) error {
	c.Location(s.location)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(s.status).Send(s.body)
}

// sameOrder reports whether a legacy order holds exactly the requested
// customer and lines.
func sameOrder(o acl.Order, r api.PlaceRequest) bool {
	if o.CustomerID != r.CustomerID || len(o.Lines) != len(r.Items) {
		return false
	}
	for i, l := range o.Lines {
		if l.Sku != r.Items[i].Sku || l.Quantity != r.Items[i].Quantity {
			return false
		}
	}
	return true
}

// dryRunPlace answers a shadowed POST /orders: every item is read from the
// legacy (existence, price, stock) and the order is answered as it would be
// placed, with a fresh id; nothing is written anywhere.
func (b *Backend) dryRunPlace(c *fiber.Ctx, req api.PlaceRequest) error {
	now := b.cfg.Now().UTC()
	o := acl.Order{ID: uuid.NewString(), CustomerID: req.CustomerID, Status: acl.StatusPlaced, Currency: "EUR",
		CreatedAt: now, UpdatedAt: now, Version: 1, Lines: make([]acl.OrderLine, 0, len(req.Items))}
	var problems []itemProblem
	for i, it := range req.Items {
		a, err := b.legacy.Product(ctx(c), it.Sku)
		var le *acl.LegacyError
		if errors.As(err, &le) && le.Code == acl.CodeUnknownArticle {
			problems = append(problems, itemProblem{Field: fmt.Sprintf("items[%d].sku", i), Sku: it.Sku, Reason: "no such product in the catalog"})
			continue
		}
		if err != nil {
			return b.legacyError(c, acl.OpPlaceOrder, err)
		}
		p, err := b.tr.Product(a)
		if err != nil {
			return b.legacyError(c, acl.OpPlaceOrder, err)
		}
		if p.Stock < int64(it.Quantity) {
			return apierr.New(apierr.CodeOutOfStock, "not enough stock of %s", it.Sku).
				WithDetails(map[string]any{"field": fmt.Sprintf("items[%d].quantity", i), "sku": it.Sku})
		}
		total := p.Price.AmountMinor * int64(it.Quantity)
		o.Lines = append(o.Lines, acl.OrderLine{Sku: p.SKU, Name: p.Name, Quantity: it.Quantity, UnitPrice: p.Price,
			LineTotal: acl.Money{AmountMinor: total, Currency: p.Price.Currency}})
		o.Total.AmountMinor += total
	}
	if len(problems) > 0 {
		return apierr.New(apierr.CodeInvalidItem, "%d item(s) cannot be ordered", len(problems)).
			WithDetails(map[string]any{"field": problems[0].Field, "items": problems})
	}
	o.Total.Currency = o.Currency
	c.Location("/api/v1/orders/" + o.ID)
	return c.Status(fiber.StatusCreated).JSON(o)
}

// indexOrder remembers which legacy order an orderId names.
func indexOrder(ctx context.Context, tx *sql.Tx, orderID, ordNo string) error {
	_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO order_index (order_id, ord_no) VALUES (?, ?)`, orderID, ordNo)
	return err
}

var errNoOrder = errors.New("no such order")

// resolve finds the legacy order number of an orderId. An id the index does
// not know yet makes the backend catch up with the legacy's orders feed
// (from its checkpoint), which covers orders placed by other clients, by
// the sync's write-back, and historic ones.
func (b *Backend) resolve(c *fiber.Ctx, orderID string) (string, error) {
	lookup := func() (string, error) {
		var no string
		err := b.db.R.QueryRowContext(c.UserContext(), `SELECT ord_no FROM order_index WHERE order_id = ?`, orderID).Scan(&no)
		if errors.Is(err, sql.ErrNoRows) {
			return "", errNoOrder
		}
		return no, err
	}
	if _, err := uuid.Parse(orderID); err != nil || len(orderID) != 36 {
		return "", errNoOrder // every orderId of the contract is a UUID
	}
	no, err := lookup()
	if !errors.Is(err, errNoOrder) {
		return no, err
	}
	if err := b.catchUp(c); err != nil {
		return "", err
	}
	return lookup()
}

// catchUp indexes every order in the legacy's orders feed after the stored
// checkpoint.
func (b *Backend) catchUp(c *fiber.Ctx) error {
	b.indexMu.Lock()
	defer b.indexMu.Unlock()
	rctx := c.UserContext()
	var since int64
	err := b.db.R.QueryRowContext(rctx, `SELECT value FROM meta WHERE key = ?`, metaOrdersFeed).Scan(&since)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	for {
		e, err := b.legacy.OrdersSince(ctx(c), since, feedPageSize)
		if err != nil {
			return b.legacyError(c, acl.OpFeed, err)
		}
		page, err := acl.Feed(e, "auftraege")
		if err != nil {
			return b.legacyError(c, acl.OpFeed, err)
		}
		err = b.db.Tx(rctx, func(tx *sql.Tx) error {
			for _, a := range e.Auftraege {
				no := strings.TrimSpace(a.OrdNo)
				if err := indexOrder(rctx, tx, acl.OrderID(no, a.ExtRef), no); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(rctx, `INSERT INTO meta (key, value) VALUES (?, ?)
				ON CONFLICT (key) DO UPDATE SET value = excluded.value`, metaOrdersFeed, page.Next)
			return err
		})
		if err != nil {
			return fmt.Errorf("indexing legacy orders: %w", err)
		}
		since = page.Next
		if !page.More {
			return nil
		}
	}
}

// legacyOrder reads and translates the order an orderId names.
func (b *Backend) legacyOrder(c *fiber.Ctx, orderID string) (acl.Order, error) {
	no, err := b.resolve(c, orderID)
	if errors.Is(err, errNoOrder) {
		return acl.Order{}, apierr.New(apierr.CodeNotFound, "no order %q", orderID)
	}
	if err != nil {
		return acl.Order{}, err
	}
	a, err := b.legacy.Order(ctx(c), no)
	if err != nil {
		return acl.Order{}, b.legacyError(c, acl.OpOrder, err)
	}
	o, err := b.tr.Order(a)
	if err != nil {
		return acl.Order{}, b.legacyError(c, acl.OpOrder, err)
	}
	return o, nil
}

func (b *Backend) getOrder(c *fiber.Ctx) error {
	o, err := b.legacyOrder(c, strings.Clone(c.Params("orderId")))
	if err != nil {
		return err
	}
	return c.JSON(o)
}

// next is the contract's state machine; the legacy's own (which also knows
// NEU) is stricter only for historic orders.
func next(s acl.Status, a acl.Action) (acl.Status, bool) {
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

func illegal(o acl.Order, a acl.Action) error {
	return apierr.New(apierr.CodeIllegalTransition, "cannot %s an order that is %s", a, o.Status).
		WithDetails(map[string]string{"status": string(o.Status), "action": string(a)})
}

func (b *Backend) transition(a acl.Action) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var empty struct{}
		if err := b.decodeBody(c, &empty, false); err != nil {
			return err
		}
		id := strings.Clone(c.Params("orderId"))
		o, err := b.legacyOrder(c, id)
		if err != nil {
			return err
		}
		to, ok := next(o.Status, a)
		if !ok {
			return illegal(o, a)
		}
		if isShadow(c) {
			o.Status, o.UpdatedAt, o.Version = to, b.cfg.Now().UTC(), o.Version+1
			return c.JSON(o)
		}
		after, err := b.legacy.Transition(ctx(c), a, o.LegacyOrderNo)
		var le *acl.LegacyError
		if errors.As(err, &le) && le.Code == acl.CodeIllegalTransition {
			// Changed by someone else between our read and the legacy's
			// write: report the state the legacy has now.
			if cur, err := b.legacyOrder(c, id); err == nil {
				return illegal(cur, a)
			}
			return illegal(o, a)
		}
		if err != nil {
			return b.legacyError(c, acl.OpTransition, err)
		}
		res, err := b.tr.Order(after)
		if err != nil {
			return b.legacyError(c, acl.OpTransition, err)
		}
		b.log.Info("order "+string(a)+" in legacy", "order_id", res.ID, "ord_no", res.LegacyOrderNo,
			"status", string(res.Status), "request_id", apierr.RequestID(c))
		return c.JSON(res)
	}
}

type orderPage = api.Page[acl.Order]

// listOrders serves GET /api/v1/orders?customerId=: the customer's legacy
// orders, newest (highest ord_no) first.
func (b *Backend) listOrders(c *fiber.Ctx) error {
	var vs []apierr.Violation
	customer := strings.Clone(c.Query("customerId"))
	if strings.TrimSpace(customer) == "" || len(customer) > maxIDLength {
		vs = append(vs, apierr.Violation{Field: "customerId", Message: fmt.Sprintf("is required, 1 to %d characters", maxIDLength)})
	}
	limit := defaultOrderPage
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxOrderPage {
			vs = append(vs, apierr.Violation{Field: "limit", Message: fmt.Sprintf("must be an integer from 1 to %d", maxOrderPage)})
		}
		limit = n
	}
	var before int64 = -1
	if raw := c.Query("cursor"); raw != "" {
		dec, err := base64.RawURLEncoding.DecodeString(raw)
		rest, ok := strings.CutPrefix(string(dec), orderCursorPre)
		n, perr := strconv.ParseInt(rest, 10, 64)
		if err != nil || !ok || perr != nil || n < 1 {
			vs = append(vs, apierr.Violation{Field: "cursor", Message: "is not a cursor this service issued"})
		}
		before = n
	}
	if len(vs) > 0 {
		return apierr.Validation(vs)
	}
	page := orderPage{Items: []acl.Order{}}
	if !digits(customer) || len(customer) > 32 {
		return c.JSON(page) // not a legacy customer number: no orders, as the order service would say
	}
	k, err := b.legacy.CustomerOrders(ctx(c), customer)
	var le *acl.LegacyError
	if errors.As(err, &le) && le.Code == acl.CodeUnknownCustomer {
		return c.JSON(page)
	}
	if err != nil {
		return b.legacyError(c, acl.OpCustomerOrders, err)
	}
	type numbered struct {
		no int64
		o  acl.Order
	}
	all := make([]numbered, 0, len(k.Auftraege))
	for _, a := range k.Auftraege {
		o, err := b.tr.Order(a)
		if err != nil {
			return b.legacyError(c, acl.OpCustomerOrders, err)
		}
		no, _ := strconv.ParseInt(o.LegacyOrderNo, 10, 64) // Order checked it is a number
		if before < 0 || no < before {
			all = append(all, numbered{no, o})
		}
	}
	slices.SortFunc(all, func(x, y numbered) int { return int(y.no - x.no) })
	if len(all) > limit {
		all = all[:limit]
		page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(orderCursorPre + strconv.FormatInt(all[limit-1].no, 10)))
	}
	err = b.db.Tx(c.UserContext(), func(tx *sql.Tx) error {
		for _, n := range all {
			page.Items = append(page.Items, n.o)
			if err := indexOrder(c.UserContext(), tx, n.o.ID, n.o.LegacyOrderNo); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("indexing listed orders: %w", err)
	}
	return c.JSON(page)
}
