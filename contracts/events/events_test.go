package events_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/contracts/events"
)

// TestEmittedEventsMatchTheContract drives the real services through every
// change that emits an event, pulls both feeds and validates every envelope
// and its data against asyncapi.yaml's schemas, closed (a field a service
// emits without declaring it fails too). Every message of the document must
// have been seen, so the document cannot describe events nobody emits.
func TestEmittedEventsMatchTheContract(t *testing.T) {
	strict, err := events.NewStrictValidator()
	if err != nil {
		t.Fatal(err)
	}
	s := startServices(t, nil, nil)
	s.exercise()
	catalogEvents := s.waitFeed(s.catalog, "", func(evs []json.RawMessage) bool {
		return count(evs, "stock.changed", "order-released") == 1
	})
	orderEvents := s.feed(s.orders, "")
	orderEventsV2 := s.feed(s.orders, "&schemaVersion=2")

	seen := map[events.Key]int{}
	for name, evs := range map[string][]json.RawMessage{
		"catalog": catalogEvents, "orders": orderEvents, "orders?schemaVersion=2": orderEventsV2} {
		for _, raw := range evs {
			k, err := strict.Validate(raw)
			if err != nil {
				t.Errorf("%s feed: %v\nevent: %s", name, err, raw)
			}
			seen[k]++
		}
	}
	declared, err := events.Messages()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range declared {
		if seen[k] == 0 {
			t.Errorf("asyncapi.yaml declares %s but the services emitted none", k)
		}
	}
	if len(declared) != len(seen) {
		t.Errorf("emitted %v, declared %v", seen, declared)
	}
	if n := count(orderEvents, "order.created", ""); n != 3 {
		t.Errorf("order.created on the default feed: %d, want 3 (two placed, one mirrored)", n)
	}
}

// TestValidationCatchesSeededViolations proves the check above can fail:
// real events, each broken in one way a producer could break them.
func TestValidationCatchesSeededViolations(t *testing.T) {
	open, err := events.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	strict, err := events.NewStrictValidator()
	if err != nil {
		t.Fatal(err)
	}
	s := startServices(t, nil, nil)
	s.exercise()
	var created, stock json.RawMessage
	for _, raw := range s.feed(s.orders, "") {
		if count([]json.RawMessage{raw}, "order.created", "") == 1 {
			created = raw
			break
		}
	}
	for _, raw := range s.feed(s.catalog, "") {
		if count([]json.RawMessage{raw}, "stock.changed", "") == 1 {
			stock = raw
			break
		}
	}
	if created == nil || stock == nil {
		t.Fatal("the services emitted no order.created or stock.changed")
	}
	for _, raw := range []json.RawMessage{created, stock} {
		if _, err := strict.Validate(raw); err != nil {
			t.Fatalf("unbroken event fails: %v", err)
		}
	}

	cases := []struct {
		name      string
		event     json.RawMessage
		edit      func(e map[string]any)
		validator *events.Validator
		want      string // in the error
	}{
		{"money as a bare number", created, func(e map[string]any) {
			e["data"].(map[string]any)["total"] = 9998
		}, open, "/data/total"},
		{"required data field missing", created, func(e map[string]any) {
			delete(e["data"].(map[string]any), "customerId")
		}, open, "customerId"},
		{"unknown order status", created, func(e map[string]any) {
			e["data"].(map[string]any)["status"] = "LOST"
		}, open, "/data/status"},
		{"envelope without eventId", stock, func(e map[string]any) {
			delete(e, "eventId")
		}, open, "eventId"},
		{"eventId not a UUID", stock, func(e map[string]any) {
			e["eventId"] = "42"
		}, open, "/eventId"},
		{"stock as a string", stock, func(e map[string]any) {
			e["data"].(map[string]any)["stockAfter"] = "3"
		}, open, "/data/stockAfter"},
		{"undeclared data field (strict only)", stock, func(e map[string]any) {
			e["data"].(map[string]any)["warehouse"] = "W1"
		}, strict, "warehouse"},
		{"undeclared envelope field (strict only)", created, func(e map[string]any) {
			e["tenant"] = "t1"
		}, strict, "tenant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e map[string]any
			if err := json.Unmarshal(tc.event, &e); err != nil {
				t.Fatal(err)
			}
			tc.edit(e)
			raw, _ := json.Marshal(e)
			_, err := tc.validator.Validate(raw)
			if err == nil {
				t.Fatalf("seeded violation passed: %s", raw)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not name %q: %v", tc.want, err)
			}
		})
	}

	t.Run("unknown type or version", func(t *testing.T) {
		var e map[string]any
		_ = json.Unmarshal(stock, &e)
		e["schemaVersion"] = 9
		raw, _ := json.Marshal(e)
		if _, err := open.Validate(raw); !errors.Is(err, events.ErrUnknownEvent) {
			t.Fatalf("got %v, want ErrUnknownEvent", err)
		}
	})
	t.Run("tolerant: the open schemas accept added fields", func(t *testing.T) {
		var e map[string]any
		_ = json.Unmarshal(stock, &e)
		e["tenant"] = "t1"
		e["data"].(map[string]any)["warehouse"] = "W1"
		raw, _ := json.Marshal(e)
		if _, err := open.Validate(raw); err != nil {
			t.Fatalf("an added field fails the published schema: %v", err)
		}
	})
}
