package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/newsvc/outbox"
)

// rename is a test upcaster: v1 {"n":..} becomes v2 {"count":..}, v2 adds
// "ok": true as v3.
func testUpcasters() []outbox.Upcaster {
	return []outbox.Upcaster{
		{Type: "thing.done", From: 1, Up: func(d json.RawMessage) (json.RawMessage, error) {
			return json.RawMessage(strings.Replace(string(d), `"n"`, `"count"`, 1)), nil
		}},
		{Type: "thing.done", From: 2, Up: func(d json.RawMessage) (json.RawMessage, error) {
			return json.RawMessage(strings.TrimSuffix(string(d), "}") + `,"ok":true}`), nil
		}},
		{Type: "thing.failed", From: 1, Up: func(json.RawMessage) (json.RawMessage, error) {
			return nil, errors.New("cannot")
		}},
	}
}

func TestConvertUpcastsOneVersionAtATime(t *testing.T) {
	ups := testUpcasters()
	if got := outbox.Latest(ups); got != 3 {
		t.Fatalf("Latest = %d, want 3", got)
	}
	if got := outbox.Latest(nil); got != 1 {
		t.Fatalf("Latest(nil) = %d, want 1", got)
	}
	v1 := outbox.Envelope{Type: "thing.done", SchemaVersion: 1, Data: json.RawMessage(`{"n":2}`)}
	for _, tc := range []struct {
		want    int
		version int
		data    string
	}{
		{0, 1, `{"n":2}`},
		{1, 1, `{"n":2}`},
		{2, 2, `{"count":2}`},
		{3, 3, `{"count":2,"ok":true}`},
		{7, 3, `{"count":2,"ok":true}`}, // highest not above 7
	} {
		got, err := outbox.Convert(ups, v1, tc.want)
		if err != nil || got.SchemaVersion != tc.version || string(got.Data) != tc.data {
			t.Errorf("Convert(v1, %d) = v%d %s, %v; want v%d %s", tc.want, got.SchemaVersion, got.Data, err, tc.version, tc.data)
		}
	}
	other := outbox.Envelope{Type: "other.thing", SchemaVersion: 1, Data: json.RawMessage(`{}`)}
	if got, err := outbox.Convert(ups, other, 3); err != nil || got.SchemaVersion != 1 {
		t.Errorf("a type without upcasters changed: v%d, %v", got.SchemaVersion, err)
	}
	v3 := outbox.Envelope{Type: "thing.done", SchemaVersion: 3, Data: json.RawMessage(`{}`)}
	if _, err := outbox.Convert(ups, v3, 1); !errors.Is(err, outbox.ErrNoDowncast) {
		t.Errorf("downcast: %v, want ErrNoDowncast", err)
	}
	bad := outbox.Envelope{Type: "thing.failed", SchemaVersion: 1, Data: json.RawMessage(`{}`)}
	if _, err := outbox.Convert(ups, bad, 2); err == nil || !strings.Contains(err.Error(), "cannot") {
		t.Errorf("a failing upcaster: %v", err)
	}
}

func TestSubscriberSchemaVersionIsValidated(t *testing.T) {
	err := outbox.ValidateSubscribers([]outbox.Subscriber{{Name: "a", URL: "http://127.0.0.1:1/", SchemaVersion: -1}})
	if err == nil || !strings.Contains(err.Error(), "schemaVersion -1") {
		t.Fatalf("got %v", err)
	}
}

func TestDispatcherRefusesAVersionAboveTheLatest(t *testing.T) {
	subs := []outbox.Subscriber{{Name: "billing", URL: "http://127.0.0.1:1/", SchemaVersion: 4}}
	err := outbox.NewDispatcher(nil, subs, nil, nil, outbox.WithUpcasters(testUpcasters()...)).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "schemaVersion 4 is above this service's latest, 3") {
		t.Fatalf("got %v", err)
	}
}
