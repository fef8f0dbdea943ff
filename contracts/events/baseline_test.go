package events_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ficus-gw/ficus/contracts/events"
)

// published is the committed baseline of the event contract, the one
// consumers were given (make publish-contract API=events).
func published(t *testing.T) fs.FS {
	t.Helper()
	if _, err := os.Stat("../published/events/asyncapi.yaml"); err != nil {
		t.Fatalf("no published event contract: %v", err)
	}
	return os.DirFS("../published/events")
}

// emitted runs the services through every event and returns the feeds'
// events, order.created in both versions.
func emitted(t *testing.T) []json.RawMessage {
	s := startServices(t, nil, nil)
	s.exercise()
	all := s.waitFeed(s.catalog, "", func(evs []json.RawMessage) bool {
		return count(evs, "stock.changed", "order-released") == 1
	})
	all = append(all, s.feed(s.orders, "")...)
	return append(all, s.feed(s.orders, "&schemaVersion=2")...)
}

// TestPublishedEventContractStillHolds is the event side of the contract
// gate: what the services emit today must still satisfy the published
// baseline (open, as consumers read it), and every published message must
// still be declared. Dropping a field, changing a type or removing a
// message fails here even when asyncapi.yaml was changed along with it.
func TestPublishedEventContractStillHolds(t *testing.T) {
	base, err := events.NewValidatorFS(published(t), false)
	if err != nil {
		t.Fatal(err)
	}
	current, err := events.Messages()
	if err != nil {
		t.Fatal(err)
	}
	declared := map[events.Key]bool{}
	for _, k := range current {
		declared[k] = true
	}
	for _, k := range base.Keys() {
		if !declared[k] {
			t.Errorf("%s was published and is no longer declared in asyncapi.yaml (announce a deprecation instead)", k)
		}
	}
	for _, raw := range emitted(t) {
		if k, err := base.Validate(raw); err != nil {
			t.Errorf("breaks the published %s: %v\nevent: %s", k, err, raw)
		}
	}
}

// The gate above fails on a seeded violation: a baseline whose order data
// requires a field the service does not send (as if the service had
// dropped it).
func TestPublishedEventContractGateCanFail(t *testing.T) {
	seeded := fstest.MapFS{}
	err := fs.WalkDir(published(t), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(published(t), p)
		if p == "schemas/data/order.v1.json" {
			b = []byte(strings.Replace(string(b), `"required": ["orderId",`, `"required": ["channel", "orderId",`, 1))
			if !strings.Contains(string(b), `"channel"`) {
				t.Fatal("could not seed the violation")
			}
		}
		seeded[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	base, err := events.NewValidatorFS(seeded, false)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, raw := range emitted(t) {
		if _, err := base.Validate(raw); err != nil {
			if !strings.Contains(err.Error(), "channel") {
				t.Errorf("failed without naming the field: %v", err)
			}
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no event failed a baseline requiring a field nobody sends")
	}
}
