package order

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/newsvc/outbox"
)

func TestUpsertFromLegacy(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	ctx := context.Background()
	placed := time.Date(2019, 5, 4, 10, 0, 0, 0, time.UTC)
	lo := LegacyOrder{
		LegacyOrderNo: "L-1001",
		CustomerID:    "alice",
		Status:        StatusPaid,
		Currency:      "EUR",
		Lines:         []LegacyLine{{Sku: "A", Name: "Alpha", Quantity: 2, UnitPriceMinor: 1250}, {Sku: "B", Name: "Beta", Quantity: 1, UnitPriceMinor: 99}},
		PlacedAt:      placed,
		UpdatedAt:     placed.Add(time.Hour),
	}
	if err := h.svc.UpsertFromLegacy(ctx, lo); err != nil {
		t.Fatal(err)
	}
	get := func() Order {
		res := h.do(http.MethodGet, "/api/v1/orders/"+LegacyOrderID("L-1001"), "")
		wantStatus(t, res, http.StatusOK, "")
		return res.order(t)
	}
	o := get()
	if o.LegacyOrderNo != "L-1001" || o.Status != StatusPaid || o.Total.AmountMinor != 2599 || o.Version != 1 ||
		!o.CreatedAt.Equal(placed) || len(o.Lines) != 2 {
		t.Fatalf("mirrored order %+v", o)
	}

	// The same content again changes nothing.
	if err := h.svc.UpsertFromLegacy(ctx, lo); err != nil {
		t.Fatal(err)
	}
	if again := get(); again.Version != 1 || h.countRows("orders") != 1 {
		t.Fatalf("repeat upsert changed the order: %+v", again)
	}

	// A change in the legacy is mirrored and versioned.
	lo.Status = StatusShipped
	lo.Lines = lo.Lines[:1]
	lo.UpdatedAt = placed.Add(48 * time.Hour)
	if err := h.svc.UpsertFromLegacy(ctx, lo); err != nil {
		t.Fatal(err)
	}
	if o := get(); o.Status != StatusShipped || o.Version != 2 || o.Total.AmountMinor != 2500 || len(o.Lines) != 1 {
		t.Fatalf("updated order %+v", o)
	}
	// Consumers saw the order like any other: created, then shipped, each
	// once, with ids derived from the legacy number, type and version.
	evs := h.events()
	if len(evs) != 2 || evs[0].Type != "order.created" || evs[0].EventID != LegacyEventID("L-1001", "order.created", 1) ||
		evs[1].Type != "order.shipped" || evs[1].EventID != LegacyEventID("L-1001", "order.shipped", 2) ||
		evs[0].SchemaVersion != eventSchemaVersion || evs[0].AggregateID != LegacyOrderID("L-1001") {
		t.Fatalf("events of a legacy sync: %+v", evs)
	}
	var data Order
	if err := json.Unmarshal(evs[1].Data, &data); err != nil || data.Status != StatusShipped || data.LegacyOrderNo != "L-1001" {
		t.Fatalf("order.shipped data %s (%v)", evs[1].Data, err)
	}
	// It shows up in the customer's list like any other order.
	res := h.do(http.MethodGet, "/api/v1/orders?customerId=alice", "")
	wantStatus(t, res, http.StatusOK, "")
	var page orderPage
	if err := json.Unmarshal(res.body, &page); err != nil || len(page.Items) != 1 || page.Items[0].LegacyOrderNo != "L-1001" {
		t.Fatalf("list %s (%v)", res.body, err)
	}
}

func TestUpsertFromLegacyRefusesBadInput(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	good := func() LegacyOrder {
		return LegacyOrder{LegacyOrderNo: "L-1", CustomerID: "c", Status: StatusPlaced, Currency: "EUR",
			Lines: []LegacyLine{{Sku: "A", Quantity: 1, UnitPriceMinor: 1}}}
	}
	tests := []struct {
		name   string
		mutate func(*LegacyOrder)
	}{
		{"no number", func(o *LegacyOrder) { o.LegacyOrderNo = "" }},
		{"no customer", func(o *LegacyOrder) { o.CustomerID = "" }},
		{"unknown status", func(o *LegacyOrder) { o.Status = "LOST" }},
		{"bad currency", func(o *LegacyOrder) { o.Currency = "euro" }},
		{"no lines", func(o *LegacyOrder) { o.Lines = nil }},
		{"zero quantity", func(o *LegacyOrder) { o.Lines[0].Quantity = 0 }},
		{"negative price", func(o *LegacyOrder) { o.Lines[0].UnitPriceMinor = -5 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := good()
			tt.mutate(&o)
			if err := h.svc.UpsertFromLegacy(context.Background(), o); !errors.Is(err, ErrInvalidLegacyOrder) {
				t.Fatalf("err = %v, want ErrInvalidLegacyOrder", err)
			}
		})
	}
	t.Cleanup(func() {
		if n := h.countRows("orders"); n != 0 {
			t.Errorf("%d orders stored from bad input", n)
		}
	})
}

func TestRunDeliversEventsToSubscribers(t *testing.T) {
	t.Parallel()
	got := make(chan outbox.Envelope, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e outbox.Envelope
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got <- e
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	h := startWithFake(t, func(c *Config) {
		c.Subscribers = []outbox.Subscriber{{Name: "billing", URL: hook.URL, Types: []string{"order.created"}}}
	})
	h.catalog.add("A", 100, "EUR", 10)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.svc.Run(ctx) }()

	res := h.place("k", orderBody("c1", "A", 1), "X-Request-Id", "corr-1")
	wantStatus(t, res, http.StatusCreated, "")
	select {
	case e := <-got:
		if e.Type != "order.created" || e.AggregateID != res.order(t).ID || e.CorrelationID != "corr-1" {
			t.Fatalf("delivered %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("order.created not delivered")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRunRefusesBadSubscribers(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, func(c *Config) {
		c.Subscribers = []outbox.Subscriber{{Name: "", URL: "not a url"}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.svc.Run(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("Run = %v, want an immediate configuration error", err)
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	t.Parallel()
	tests := []Config{
		{CatalogURL: "http://127.0.0.1:1"},
		{DBPath: t.TempDir() + "/x.db"},
		{DBPath: t.TempDir() + "/x.db", CatalogURL: "ftp://x"},
		{DBPath: t.TempDir() + "/x.db", CatalogURL: "http://x", CatalogTimeout: -time.Second},
	}
	for i, cfg := range tests {
		if s, err := Open(context.Background(), cfg, nil); err == nil {
			_ = s.Close()
			t.Errorf("config %d accepted: %+v", i, cfg)
		}
	}
}

func TestIdempotencyKeysExpire(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, func(c *Config) { c.IdempotencyTTL = time.Hour })
	h.catalog.add("A", 100, "EUR", 10)
	first := h.place("old", orderBody("c1", "A", 1))
	wantStatus(t, first, http.StatusCreated, "")

	h.clock.Advance(59 * time.Minute)
	h.svc.pruneKeys(context.Background())
	wantStatus(t, h.place("old", orderBody("c1", "A", 2)), http.StatusConflict, "IDEMPOTENCY_KEY_REUSED")

	h.clock.Advance(2 * time.Minute)
	h.svc.pruneKeys(context.Background())
	// Past the TTL the key is forgotten: reusing it places a new order.
	again := h.place("old", orderBody("c1", "A", 1))
	wantStatus(t, again, http.StatusCreated, "")
	if again.order(t).ID == first.order(t).ID {
		t.Fatal("expired key still replayed")
	}
}

// TestLinkLegacyOrder covers the write-back link: a new-side order learns
// the legacy number it was booked under, once, and never two orders the
// same number.
func TestLinkLegacyOrder(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	ctx := context.Background()
	placed := time.Date(2019, 5, 4, 10, 0, 0, 0, time.UTC)
	for _, no := range []string{"L-1", "L-2"} {
		if err := h.svc.UpsertFromLegacy(ctx, LegacyOrder{LegacyOrderNo: no, CustomerID: "bob", Status: StatusPlaced, Currency: "EUR",
			Lines: []LegacyLine{{Sku: "A", Name: "Alpha", Quantity: 1, UnitPriceMinor: 100}}, PlacedAt: placed, UpdatedAt: placed}); err != nil {
			t.Fatal(err)
		}
	}
	// Unlink L-2's order so that it stands for a new-side order without a link.
	if _, err := h.svc.db.W.ExecContext(ctx, `UPDATE orders SET legacy_order_no = NULL WHERE id = ?`, LegacyOrderID("L-2")); err != nil {
		t.Fatal(err)
	}
	id := LegacyOrderID("L-2")
	if err := h.svc.LinkLegacyOrder(ctx, id, "L-1"); !errors.Is(err, ErrLegacyLinkConflict) {
		t.Fatalf("linking to a number another order has: %v, want ErrLegacyLinkConflict", err)
	}
	if err := h.svc.LinkLegacyOrder(ctx, id, "L-99"); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.LinkLegacyOrder(ctx, id, "L-99"); err != nil {
		t.Fatalf("linking again to the same number: %v, want no-op", err)
	}
	if err := h.svc.LinkLegacyOrder(ctx, id, "L-100"); !errors.Is(err, ErrLegacyLinkConflict) {
		t.Fatalf("relinking to another number: %v, want ErrLegacyLinkConflict", err)
	}
	if err := h.svc.LinkLegacyOrder(ctx, "no-such-order", "L-5"); err == nil {
		t.Fatal("linking an unknown order succeeded")
	}
	res := h.do(http.MethodGet, "/api/v1/orders/"+id, "")
	wantStatus(t, res, http.StatusOK, "")
	if o := res.order(t); o.LegacyOrderNo != "L-99" {
		t.Fatalf("legacyOrderNo = %q, want L-99", o.LegacyOrderNo)
	}
}

// A replayed sync (the same legacy history again, here into a rebuilt
// mirror) produces events with the same ids, so a consumer that
// deduplicates by eventId processes each once; repeating an upsert in the
// same mirror produces no event at all.
func TestLegacyOrderEventsHaveStableIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	placed := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	history := []LegacyOrder{
		{LegacyOrderNo: "L-7", CustomerID: "bob", Status: StatusPlaced, Currency: "EUR", ExtRef: "ik-0123456789abcdef0123456789abcdef",
			Lines: []LegacyLine{{Sku: "A", Name: "Alpha", Quantity: 1, UnitPriceMinor: 500}}, PlacedAt: placed},
		{LegacyOrderNo: "L-7", CustomerID: "bob", Status: StatusPaid, Currency: "EUR", ExtRef: "ik-0123456789abcdef0123456789abcdef",
			Lines: []LegacyLine{{Sku: "A", Name: "Alpha", Quantity: 1, UnitPriceMinor: 500}}, PlacedAt: placed, UpdatedAt: placed.Add(time.Hour)},
	}
	sync := func(h *harness) []outbox.Stored {
		for _, lo := range history {
			for range 2 { // each entry delivered twice, as an at-least-once feed does
				if err := h.svc.UpsertFromLegacy(ctx, lo); err != nil {
					t.Fatal(err)
				}
			}
		}
		return h.events()
	}
	first := sync(startWithFake(t, nil))
	rebuilt := sync(startWithFake(t, nil))
	if len(first) != 2 || first[0].Type != "order.created" || first[1].Type != "order.paid" {
		t.Fatalf("events %+v, want order.created then order.paid", first)
	}
	seen := map[string]bool{}
	for i := range first {
		if first[i].EventID != rebuilt[i].EventID || !first[i].OccurredAt.Equal(rebuilt[i].OccurredAt) || seen[first[i].EventID] {
			t.Fatalf("event %d: ids %s and %s differ between syncs (or repeat)", i, first[i].EventID, rebuilt[i].EventID)
		}
		seen[first[i].EventID] = true
	}
	if !first[0].OccurredAt.Equal(placed) {
		t.Errorf("order.created occurredAt %s, want the legacy's placement time %s", first[0].OccurredAt, placed)
	}
}

// An order booked on the new side and written back to the legacy comes back
// through the feed with ext_ref = its orderId: it is linked, not mirrored,
// and consumers get no second order.created.
func TestWrittenBackOrderIsLinkedNotMirrored(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	h.catalog.add("A", 500, "EUR", 10)
	res := h.place("wb-1", orderBody("carol", "A", 2))
	wantStatus(t, res, http.StatusCreated, "")
	o := res.order(t)
	before := len(h.events())
	err := h.svc.UpsertFromLegacy(context.Background(), LegacyOrder{
		LegacyOrderNo: "L-900", CustomerID: "carol", Status: StatusPlaced, Currency: "EUR", ExtRef: o.ID,
		Lines: []LegacyLine{{Sku: "A", Name: o.Lines[0].Name, Quantity: 2, UnitPriceMinor: 500}}, PlacedAt: o.CreatedAt,
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := h.countRows("orders"); n != 1 {
		t.Fatalf("%d orders after the write-back came back, want 1", n)
	}
	if got := h.do(http.MethodGet, "/api/v1/orders/"+o.ID, "").order(t); got.LegacyOrderNo != "L-900" || got.Version != 1 {
		t.Fatalf("written-back order %+v, want linked to L-900 and unchanged", got)
	}
	if after := h.events(); len(after) != before {
		t.Fatalf("%d events after the write-back came back, want %d (no second order.created)", len(after), before)
	}
}
