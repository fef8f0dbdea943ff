package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/newsvc/catalog"
	"github.com/ficus-gw/ficus/newsvc/order"
	"github.com/ficus-gw/ficus/newsvc/outbox"
)

// waitLimit bounds every wait against a hung test.
const waitLimit = 15 * time.Second

// services are the real Catalog and Order services on loopback ports, as
// `ficus catalog` and `ficus orders` run them.
type services struct {
	t       testing.TB
	catalog string // base URL
	orders  string
	order   *order.Service
	client  *http.Client
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// serve listens on a free loopback port and serves app until the test ends.
func serve(t testing.TB, app *fiber.App, run func(context.Context) error, closeFn func() error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- run(ctx) }()
	t.Cleanup(func() {
		if err := app.ShutdownWithTimeout(waitLimit); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		_ = ln.Close()
		<-served
		cancel()
		select {
		case err := <-ran:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitLimit):
			t.Error("Run did not return")
		}
		if err := closeFn(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// startServices starts a Catalog and an Order service using it. The
// optional subscribers receive each service's webhooks.
func startServices(t testing.TB, catalogSubs, orderSubs []outbox.Subscriber) *services {
	t.Helper()
	log := slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir := t.TempDir()
	cat, err := catalog.Open(context.Background(), catalog.Config{
		DBPath: filepath.Join(dir, "catalog.db"), RateLimit: -1, Subscribers: catalogSubs,
		DispatcherOptions: []outbox.Option{outbox.WithPollInterval(50 * time.Millisecond), outbox.WithBackoff(10*time.Millisecond, 100*time.Millisecond)},
	}, log)
	if err != nil {
		t.Fatalf("catalog.Open: %v", err)
	}
	s := &services{t: t, client: &http.Client{Timeout: waitLimit}}
	s.catalog = serve(t, cat.App(), cat.Run, cat.Close)
	ord, err := order.Open(context.Background(), order.Config{
		DBPath: filepath.Join(dir, "orders.db"), CatalogURL: s.catalog, RatePerSecond: -1, Subscribers: orderSubs,
	}, log)
	if err != nil {
		t.Fatalf("order.Open: %v", err)
	}
	s.order = ord
	s.orders = serve(t, ord.App(), ord.Run, ord.Close)
	return s
}

// do sends a JSON request and returns status and body.
func (s *services) do(method, url string, body any, header ...string) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return res.StatusCode, out
}

// must is do that fails the test on an unexpected status.
func (s *services) must(want int, method, url string, body any, header ...string) []byte {
	s.t.Helper()
	status, out := s.do(method, url, body, header...)
	if status != want {
		s.t.Fatalf("%s %s: %d %s, want %d", method, url, status, out, want)
	}
	return out
}

// placeOrder places an order for qty of sku and returns its id.
func (s *services) placeOrder(key, sku string, qty int) string {
	s.t.Helper()
	out := s.must(http.StatusCreated, http.MethodPost, s.orders+"/api/v1/orders",
		map[string]any{"customerId": "c-17", "items": []map[string]any{{"sku": sku, "quantity": qty}}},
		"Idempotency-Key", key, "X-Request-Id", "req-"+key)
	var o struct {
		OrderID string `json:"orderId"`
	}
	if err := json.Unmarshal(out, &o); err != nil || o.OrderID == "" {
		s.t.Fatalf("order answer %s: %v", out, err)
	}
	return o.OrderID
}

// exercise makes both services emit every event type they have: product
// writes and stock adjustments in the Catalog; an order placed, paid and
// shipped, another placed and cancelled (its stock released); and a legacy
// order mirrored and then paid in the legacy.
func (s *services) exercise() {
	s.t.Helper()
	product := map[string]any{"name": "Desk lamp", "description": "Brass, E27", "category": "lighting",
		"price": map[string]any{"amountMinor": 4999, "currency": "EUR"}, "stock": 10}
	s.must(http.StatusCreated, http.MethodPut, s.catalog+"/api/v1/products/ART-1001", product)
	s.must(http.StatusCreated, http.MethodPost, s.catalog+"/api/v1/products/ART-1001/stock-adjustments",
		map[string]any{"delta": 5, "reason": "restock", "reference": "po-7"}, "Idempotency-Key", "restock-po-7")

	id := s.placeOrder("ord-a", "ART-1001", 2)
	s.must(http.StatusOK, http.MethodPost, s.orders+"/api/v1/orders/"+id+"/pay", nil)
	s.must(http.StatusOK, http.MethodPost, s.orders+"/api/v1/orders/"+id+"/ship", nil)
	id2 := s.placeOrder("ord-b", "ART-1001", 1)
	s.must(http.StatusOK, http.MethodPost, s.orders+"/api/v1/orders/"+id2+"/cancel", nil)

	lo := order.LegacyOrder{LegacyOrderNo: "L-900", CustomerID: "100001", Status: order.StatusPlaced, Currency: "EUR",
		Lines:    []order.LegacyLine{{Sku: "ART-1002", Name: "Shade", Quantity: 1, UnitPriceMinor: 1500}},
		PlacedAt: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	if err := s.order.UpsertFromLegacy(context.Background(), lo); err != nil {
		s.t.Fatalf("UpsertFromLegacy: %v", err)
	}
	lo.Status, lo.UpdatedAt = order.StatusPaid, lo.PlacedAt.Add(time.Hour)
	if err := s.order.UpsertFromLegacy(context.Background(), lo); err != nil {
		s.t.Fatalf("UpsertFromLegacy (paid): %v", err)
	}
}

// feed pulls every event of a service's GET /api/v1/events, page by page,
// with the extra query (e.g. "&schemaVersion=2"), each event as raw JSON.
func (s *services) feed(baseURL, query string) []json.RawMessage {
	s.t.Helper()
	var all []json.RawMessage
	after := int64(0)
	for range 1000 {
		out := s.must(http.StatusOK, http.MethodGet, fmt.Sprintf("%s/api/v1/events?after=%d&limit=3%s", baseURL, after, query), nil)
		var page struct {
			Events []json.RawMessage `json:"events"`
			Next   int64             `json:"next"`
		}
		if err := json.Unmarshal(out, &page); err != nil {
			s.t.Fatalf("feed page %s: %v", out, err)
		}
		if len(page.Events) == 0 {
			return all
		}
		all = append(all, page.Events...)
		after = page.Next
	}
	s.t.Fatal("feed did not end")
	return nil
}

// waitFeed polls a feed until cond holds for its events or waitLimit passes.
func (s *services) waitFeed(baseURL, query string, cond func([]json.RawMessage) bool) []json.RawMessage {
	s.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		evs := s.feed(baseURL, query)
		if cond(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("feed %s never reached the expected state; it has %d events", baseURL, len(evs))
		}
		time.Sleep(20 * time.Millisecond) // polling interval, bounded by the deadline
	}
}

// count returns how many events have type typ and, when reason is set, that
// data.reason.
func count(evs []json.RawMessage, typ, reason string) int {
	n := 0
	for _, raw := range evs {
		var e struct {
			Type string `json:"type"`
			Data struct {
				Reason string `json:"reason"`
			} `json:"data"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Type == typ && (reason == "" || e.Data.Reason == reason) {
			n++
		}
	}
	return n
}
