package order

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/ficus-gw/ficus/contracts/api"
	"github.com/ficus-gw/ficus/newsvc/outbox"
)

// LegacyOrder is an order that originated in the legacy monolith, already
// translated into this service's terms (the anti-corruption layer does the
// translation; this package knows nothing of the legacy's wire format).
type LegacyOrder struct {
	// LegacyOrderNo is the legacy's order number, the key of the upsert;
	// it is shown as legacyOrderNo in the order's representation.
	LegacyOrderNo string
	// CustomerID is the customer in the new services' terms (the same id
	// GET /api/v1/orders?customerId= lists by).
	CustomerID string
	// Status is the legacy status mapped onto the four of this service.
	Status Status
	// Currency is the ISO 4217 code all prices are in.
	Currency string
	// Lines are the order's products; at least one.
	Lines []LegacyLine
	// ExtRef is the legacy's ext_ref of the order, its intent lineage:
	// IntentRef of the Idempotency-Key when the anti-corruption layer booked
	// it, the new-side orderId when it was written back from this service,
	// whatever the legacy's own client sent otherwise, or empty. Stored for
	// reconcile; when it names an order this service booked, that order is
	// linked instead of mirrored.
	ExtRef string
	// PlacedAt becomes createdAt; UpdatedAt the order's updatedAt. Zero
	// means the service clock's now.
	PlacedAt  time.Time
	UpdatedAt time.Time
}

// LegacyLine is one line of a LegacyOrder; the price is per unit, in minor
// units of the order's currency.
type LegacyLine struct {
	Sku            string
	Name           string
	Quantity       int
	UnitPriceMinor int64
}

// LegacyOrderID is the orderId that UpsertFromLegacy gives the legacy order
// numbered no: a name-based UUID (RFC 9562 version 5), so that the same
// legacy order gets the same orderId on every sync and in every environment.
func LegacyOrderID(no string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:ficus:legacy-order:"+no)).String()
}

// ErrInvalidLegacyOrder is wrapped by UpsertFromLegacy for input that cannot
// be stored; the sync should log and skip the order, not retry it.
var ErrInvalidLegacyOrder = errors.New("invalid legacy order")

// LegacyEventID is the eventId of the order event of type typ that
// UpsertFromLegacy emits when the legacy order numbered no reaches version:
// a name-based UUID (RFC 9562 version 5), so a replayed or repeated sync, in
// any environment, produces the same id and consumers deduplicate it.
func LegacyEventID(no, typ string, version int64) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(fmt.Sprintf("urn:ficus:legacy-order-event:%s:%s:%d", no, typ, version))).String()
}

// UpsertFromLegacy creates or updates the order that mirrors a legacy order,
// keyed by LegacyOrderNo: calling it again with the same content changes
// nothing (version and updatedAt included), with different content it
// replaces status and lines and bumps the version. An order whose ExtRef is
// the id of an order this service booked (written back to the legacy) is
// linked to that order, not mirrored a second time.
//
// It reserves no stock: the legacy did that. It publishes the same order.*
// events as orders booked here, so consumers see every order: order.created
// when the order is first seen, the status event when its status changes.
// Their eventIds come from LegacyEventID, so a replayed sync emits nothing
// new and a rebuilt mirror emits the same ids. An order this service booked
// gets no second order.created.
func (s *Service) UpsertFromLegacy(ctx context.Context, lo LegacyOrder) error {
	o, err := s.fromLegacy(lo)
	if err != nil {
		return err
	}
	emitted := false
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		emitted = false
		cur, err := getOrderByLegacyNo(ctx, tx, lo.LegacyOrderNo)
		if errors.Is(err, errNotFound) && lo.ExtRef != "" {
			cur, err = s.linkWrittenBack(ctx, tx, lo)
		}
		if errors.Is(err, errNotFound) {
			if err := insertOrder(ctx, tx, &o); err != nil {
				return err
			}
			emitted = true
			return appendLegacyEvent(ctx, tx, o, eventType(StatusPlaced), o.CreatedAt)
		}
		if err != nil {
			return err
		}
		if lo.ExtRef != "" && cur.extRef != lo.ExtRef {
			// Lineage only: not a change of the order, no version.
			if _, err := tx.ExecContext(ctx, `UPDATE orders SET ext_ref = ? WHERE id = ?`, lo.ExtRef, cur.ID); err != nil {
				return fmt.Errorf("recording ext_ref of legacy order %s: %w", lo.LegacyOrderNo, err)
			}
		}
		if cur.Status == o.Status && cur.CustomerID == o.CustomerID && cur.Currency == o.Currency &&
			slices.Equal(cur.Lines, o.Lines) {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET customer_id = ?, status = ?, currency = ?, total_minor = ?,
			updated_at = ?, version = version + 1 WHERE id = ?`,
			o.CustomerID, string(o.Status), o.Currency, o.Total.AmountMinor, formatTime(o.UpdatedAt), cur.ID); err != nil {
			return fmt.Errorf("updating legacy order %s: %w", lo.LegacyOrderNo, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM order_lines WHERE order_id = ?`, cur.ID); err != nil {
			return fmt.Errorf("updating legacy order %s: %w", lo.LegacyOrderNo, err)
		}
		o.ID = cur.ID
		if err := insertLines(ctx, tx, &o); err != nil {
			return err
		}
		// A status event for a status change; there is no event for a
		// change of lines alone, and none for a move back to PLACED (the
		// legacy does not do that; order.created is for first sight only).
		if cur.Status == o.Status || o.Status == StatusPlaced {
			return nil
		}
		updated, err := getOrder(ctx, tx, cur.ID)
		if err != nil {
			return err
		}
		emitted = true
		return appendLegacyEvent(ctx, tx, updated, eventType(updated.Status), updated.UpdatedAt)
	})
	if err == nil && emitted {
		s.dispatcher.Kick()
	}
	return err
}

// linkWrittenBack finds the order this service booked that the legacy order
// lo mirrors (its ext_ref is that order's id, written back by the sync) and
// links it to lo's number. errNotFound when there is none or it is linked
// to another legacy order already.
func (s *Service) linkWrittenBack(ctx context.Context, tx *sql.Tx, lo LegacyOrder) (Order, error) {
	cur, err := getOrder(ctx, tx, lo.ExtRef)
	if err != nil {
		return Order{}, err
	}
	if cur.LegacyOrderNo != "" {
		s.log.Warn("legacy order names a new-side order linked to another legacy order; mirroring it separately",
			"legacy_order_no", lo.LegacyOrderNo, "order_id", cur.ID, "linked_to", cur.LegacyOrderNo)
		return Order{}, errNotFound
	}
	if _, err := tx.ExecContext(ctx, `UPDATE orders SET legacy_order_no = ? WHERE id = ?`, lo.LegacyOrderNo, cur.ID); err != nil {
		return Order{}, fmt.Errorf("linking order %s to legacy order %s: %w", cur.ID, lo.LegacyOrderNo, err)
	}
	cur.LegacyOrderNo = lo.LegacyOrderNo
	return cur, nil
}

// appendLegacyEvent stores the order event typ of a mirrored order, with a
// stable eventId and occurredAt (the legacy's own time of the change).
func appendLegacyEvent(ctx context.Context, tx *sql.Tx, o Order, typ string, at time.Time) error {
	ev, err := outbox.New(typ, eventSchemaVersion, o.ID, "legacy:"+o.LegacyOrderNo, "", o, at)
	if err != nil {
		return err
	}
	ev.EventID = LegacyEventID(o.LegacyOrderNo, typ, o.Version)
	return outbox.Append(ctx, tx, ev)
}

// fromLegacy validates lo and builds the Order it becomes.
func (s *Service) fromLegacy(lo LegacyOrder) (Order, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidLegacyOrder, lo.LegacyOrderNo, fmt.Sprintf(format, args...))
	}
	switch {
	case lo.LegacyOrderNo == "" || len(lo.LegacyOrderNo) > maxIDLength:
		return Order{}, bad("legacy order number must be 1 to %d characters", maxIDLength)
	case lo.CustomerID == "" || len(lo.CustomerID) > maxIDLength:
		return Order{}, bad("customer id must be 1 to %d characters", maxIDLength)
	case len(lo.ExtRef) > maxKeyLength:
		return Order{}, bad("ext_ref must be at most %d characters", maxKeyLength)
	case !lo.Status.Valid():
		return Order{}, bad("unknown status %q", lo.Status)
	case !validCurrency(lo.Currency):
		return Order{}, bad("currency %q is not an ISO 4217 code", lo.Currency)
	case len(lo.Lines) == 0:
		return Order{}, bad("no lines")
	}
	now := s.cfg.Now().UTC()
	o := Order{Order: api.Order{
		ID:            LegacyOrderID(lo.LegacyOrderNo),
		CustomerID:    lo.CustomerID,
		Status:        lo.Status,
		Currency:      lo.Currency,
		LegacyOrderNo: lo.LegacyOrderNo,
		CreatedAt:     lo.PlacedAt.UTC(),
		UpdatedAt:     lo.UpdatedAt.UTC(),
		Version:       1,
		Lines:         make([]Line, len(lo.Lines)),
	}, extRef: lo.ExtRef}
	if lo.PlacedAt.IsZero() {
		o.CreatedAt = now
	}
	if lo.UpdatedAt.IsZero() {
		o.UpdatedAt = o.CreatedAt
	}
	for i, l := range lo.Lines {
		if l.Sku == "" || l.Quantity < 1 || l.UnitPriceMinor < 0 {
			return Order{}, bad("line %d: need a sku, a positive quantity and a non-negative price", i+1)
		}
		o.Lines[i] = Line{Sku: l.Sku, Name: l.Name, Quantity: l.Quantity,
			UnitPrice: Money{AmountMinor: l.UnitPriceMinor, Currency: lo.Currency}}
	}
	total, err := priceLines(o.Lines, o.Currency)
	if err != nil {
		return Order{}, bad("%v", err)
	}
	o.Total = total
	return o, nil
}

// ErrLegacyLinkConflict is returned by LinkLegacyOrder when the order is
// already linked to another legacy order number, or that number to another
// order.
var ErrLegacyLinkConflict = errors.New("order already linked to a different legacy order")

// LinkLegacyOrder records that the new-side order orderID was written back to
// the legacy as legacyOrderNo, so that legacy screens and the new contract
// name the same order. Linking again to the same number is a no-op.
func (s *Service) LinkLegacyOrder(ctx context.Context, orderID, legacyOrderNo string) error {
	if orderID == "" || legacyOrderNo == "" {
		return fmt.Errorf("%w: order id and legacy order number are required", ErrInvalidLegacyOrder)
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		var cur sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT legacy_order_no FROM orders WHERE id = ?`, orderID).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("linking order %s: %w", orderID, errNotFound)
		}
		if err != nil {
			return fmt.Errorf("linking order %s: %w", orderID, err)
		}
		if cur.Valid && cur.String != "" {
			if cur.String == legacyOrderNo {
				return nil
			}
			return fmt.Errorf("linking order %s to %s: %w (it is linked to %s)", orderID, legacyOrderNo, ErrLegacyLinkConflict, cur.String)
		}
		// The write transaction is IMMEDIATE: nobody links this number
		// between the check and the update.
		if other, err := getOrderByLegacyNo(ctx, tx, legacyOrderNo); err == nil {
			return fmt.Errorf("linking order %s to %s: %w (order %s has it)", orderID, legacyOrderNo, ErrLegacyLinkConflict, other.ID)
		} else if !errors.Is(err, errNotFound) {
			return fmt.Errorf("linking order %s: %w", orderID, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET legacy_order_no = ? WHERE id = ?`, legacyOrderNo, orderID); err != nil {
			return fmt.Errorf("linking order %s: %w", orderID, err)
		}
		return nil
	})
}
