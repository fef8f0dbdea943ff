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
	"time"
)

// Status is where an order is in its life. The set is closed: a consumer may
// switch on it exhaustively.
type Status string

// The statuses of an order; see transitions for the edges between them.
const (
	StatusPlaced    Status = "PLACED"
	StatusPaid      Status = "PAID"
	StatusShipped   Status = "SHIPPED"
	StatusCancelled Status = "CANCELLED"
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
func (s Status) Next(a Action) (Status, bool) {
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

// Valid reports whether s is one of the four known statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusPlaced, StatusPaid, StatusShipped, StatusCancelled:
		return true
	}
	return false
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

// Money is an amount in a currency's minor unit (cents for EUR), so that sums
// are exact; there is no floating point anywhere in an order.
type Money struct {
	AmountMinor int64  `json:"amountMinor"`
	Currency    string `json:"currency"`
}

// Line is one product of an order with its price snapshotted at placement:
// later catalog price changes do not touch existing orders.
type Line struct {
	Sku       string `json:"sku"`
	Name      string `json:"name"`
	Quantity  int    `json:"quantity"`
	UnitPrice Money  `json:"unitPrice"`
	LineTotal Money  `json:"lineTotal"`
}

// Order is the aggregate and also its wire form (the Order schema of
// openapi.yaml): keep the two in step, additively.
type Order struct {
	ID            string    `json:"orderId"`
	CustomerID    string    `json:"customerId"`
	Status        Status    `json:"status"`
	Currency      string    `json:"currency"`
	Lines         []Line    `json:"items"`
	Total         Money     `json:"total"`
	LegacyOrderNo string    `json:"legacyOrderNo,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
	Version       int64     `json:"version"`

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
