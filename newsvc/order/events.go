package order

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ficus-gw/ficus/newsvc/outbox"
)

// order.created has two versions (contracts/events/asyncapi.yaml). The
// outbox stores v1, as the service always wrote it; readers that ask for
// schemaVersion 2 get it upcast by OrderCreatedV2. v1 is deprecated from
// OrderCreatedV1Deprecated and served until OrderCreatedV1Sunset
// (docs/contracts.md, "Event versions").
var (
	OrderCreatedV1Deprecated = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	OrderCreatedV1Sunset     = time.Date(2027, 12, 1, 0, 0, 0, 0, time.UTC)
)

// EventTypes are the event types the order service emits
// (contracts/events/asyncapi.yaml).
func EventTypes() []string {
	return []string{eventType(StatusPlaced), eventType(StatusPaid), eventType(StatusShipped), eventType(StatusCancelled)}
}

// Upcasters are the order service's event upcasters, for its pull feed and
// its webhook Dispatcher.
func Upcasters() []outbox.Upcaster {
	return []outbox.Upcaster{{
		Type: "order.created", From: 1, Up: OrderCreatedV2,
		Deprecated: OrderCreatedV1Deprecated, Sunset: OrderCreatedV1Sunset,
	}}
}

// OrderCreatedV2 turns order.created v1 data into v2: money only as
// {amountMinor, currency} objects, so the order-level currency string goes,
// and every amount (each line's unitPrice and lineTotal, total) carries its
// currency; an amount without one (never written by this service, but v1
// allowed reading it from the order) gets the order's. Fields it does not
// know are kept as they are.
func OrderCreatedV2(v1 json.RawMessage) (json.RawMessage, error) {
	var o map[string]json.RawMessage
	if err := json.Unmarshal(v1, &o); err != nil {
		return nil, fmt.Errorf("order.created v1 data is not an object: %w", err)
	}
	var currency string
	if raw, ok := o["currency"]; ok {
		if err := json.Unmarshal(raw, &currency); err != nil {
			return nil, fmt.Errorf("order.created v1 currency: %w", err)
		}
	}
	delete(o, "currency")
	fill := func(raw json.RawMessage, where string) (json.RawMessage, error) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("order.created v1 %s is not a money object: %w", where, err)
		}
		if _, ok := m["currency"]; ok {
			return raw, nil
		}
		if currency == "" {
			return nil, fmt.Errorf("order.created v1 %s has no currency and the order none either", where)
		}
		m["currency"], _ = json.Marshal(currency)
		return json.Marshal(m)
	}
	var err error
	if raw, ok := o["total"]; ok {
		if o["total"], err = fill(raw, "total"); err != nil {
			return nil, err
		}
	}
	if raw, ok := o["items"]; ok {
		var items []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("order.created v1 items: %w", err)
		}
		for i, it := range items {
			for _, k := range []string{"unitPrice", "lineTotal"} {
				if v, ok := it[k]; ok {
					if it[k], err = fill(v, fmt.Sprintf("items[%d].%s", i, k)); err != nil {
						return nil, err
					}
				}
			}
		}
		if o["items"], err = json.Marshal(items); err != nil {
			return nil, err
		}
	}
	return json.Marshal(o)
}
