// Package order is the Order bounded context of Ficus's new services: orders
// placed against the Catalog (over its HTTP API, never its database), a
// small state machine, and domain events published through the outbox in the
// same transaction as each change. The contract is openapi.yaml, served at
// GET /openapi.yaml.
//
// Placing an order is a saga with the Catalog, made safe to retry:
//
//  1. The Idempotency-Key is claimed in a transaction, together with the
//     order id it will get. A duplicate waits for the claim's owner and
//     replays its stored reply byte for byte.
//  2. Each item is read from the Catalog (price snapshot), then each line's
//     stock is reserved with a Catalog Idempotency-Key derived from the order
//     id and SKU, so a retried reservation is replayed, not repeated.
//  3. The order, its order.created event and the reply are committed in one
//     transaction. If anything fails before the commit, the lines reserved
//     so far are released (compensation): the releases are queued in SQLite
//     first and retried by Run until the Catalog acknowledges them, so a
//     Catalog outage never leaks stock.
//
// Calls to the Catalog have a per-call timeout and go through a circuit
// breaker; a Catalog that is down costs a client one fast 503 with
// Retry-After, not a hanging request.
package order

import (
	"fmt"
	"math"

	"github.com/ficus-gw/ficus/contracts/api"
)

// Status is where an order is in its life: the contract's (contracts/api),
// a closed set a consumer may switch on exhaustively.
type Status = api.Status

// The statuses of an order; see Next for the edges between them.
const (
	StatusPlaced    = api.StatusPlaced
	StatusPaid      = api.StatusPaid
	StatusShipped   = api.StatusShipped
	StatusCancelled = api.StatusCancelled
)

// Action is a command that moves an order between statuses.
type Action string

// The actions exposed as POST /api/v1/orders/{id}/{action}.
const (
	ActionPay    Action = "pay"
	ActionShip   Action = "ship"
	ActionCancel Action = "cancel"
)

// Next returns the status that action a leads to from s, and false when the
// transition is illegal. This switch is the whole state machine:
//
//	PLACED --pay--> PAID --ship--> SHIPPED
//	PLACED --cancel--> CANCELLED <--cancel-- PAID
//
// Anything else is illegal (409), including repeating an action on an order
// already in its target state, because the legacy answers that way too.
func Next(s Status, a Action) (Status, bool) {
	switch {
	case s == StatusPlaced && a == ActionPay:
		return StatusPaid, true
	case s == StatusPaid && a == ActionShip:
		return StatusShipped, true
	case (s == StatusPlaced || s == StatusPaid) && a == ActionCancel:
		return StatusCancelled, true
	}
	return "", false
}

// eventType is the outbox event type emitted when an order reaches status.
func eventType(s Status) string {
	switch s {
	case StatusPaid:
		return "order.paid"
	case StatusShipped:
		return "order.shipped"
	case StatusCancelled:
		return "order.cancelled"
	}
	return "order.created"
}

// Money and Line are the contract's types (contracts/api). Money is in a
// currency's minor unit (cents for EUR), so that sums are exact; there is
// no floating point anywhere in an order. A Line's price is snapshotted at
// placement: later catalog price changes do not touch existing orders.
type (
	Money = api.Money
	Line  = api.OrderLine
)

// Order is the aggregate: its wire form, the contract's Order (embedded, so
// it marshals as exactly that schema), and the lineage reconcile needs.
type Order struct {
	api.Order

	// intentRef is IntentRef of the Idempotency-Key the order was booked
	// under, empty for orders mirrored from the legacy; extRef is the
	// legacy's ext_ref of a mirrored order. Both are lineage for reconcile,
	// not part of the contract's representation.
	intentRef string
	extRef    string
}

// errOverflow is returned when a total does not fit in int64 minor units;
// with quantities capped at 1000 it needs absurd prices, but a wrong total
// must never be stored.
var errOverflow = fmt.Errorf("order total overflows int64 minor units")

// lineTotal multiplies without overflow.
func lineTotal(unit int64, qty int) (int64, error) {
	if unit < 0 || qty < 0 {
		return 0, fmt.Errorf("negative price %d or quantity %d", unit, qty)
	}
	if qty != 0 && unit > math.MaxInt64/int64(qty) {
		return 0, errOverflow
	}
	return unit * int64(qty), nil
}

// priceLines fills each line's LineTotal from UnitPrice and Quantity and
// returns the order total, all in currency. Every line must already be in
// currency: mixing currencies in one sum is the bug this refuses.
func priceLines(lines []Line, currency string) (Money, error) {
	var total int64
	for i := range lines {
		l := &lines[i]
		if l.UnitPrice.Currency != currency {
			return Money{}, fmt.Errorf("line %s is priced in %s, order in %s", l.Sku, l.UnitPrice.Currency, currency)
		}
		lt, err := lineTotal(l.UnitPrice.AmountMinor, l.Quantity)
		if err != nil {
			return Money{}, fmt.Errorf("line %s: %w", l.Sku, err)
		}
		if total > math.MaxInt64-lt {
			return Money{}, errOverflow
		}
		total += lt
		l.LineTotal = Money{AmountMinor: lt, Currency: currency}
	}
	return Money{AmountMinor: total, Currency: currency}, nil
}
