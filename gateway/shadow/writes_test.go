package shadow_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/newsvc/catalog"
	"github.com/ficus-gw/ficus/newsvc/order"
	"github.com/gofiber/fiber/v2"
)

// serveApp runs a Fiber app on a loopback listener until the test ends.
func serveApp(t *testing.T, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.ShutdownWithTimeout(5 * time.Second) })
	return "http://" + ln.Addr().String()
}

func call(t *testing.T, method, url, body string, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestShadowedWriteCreatesNoSecondOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()

	cat, err := catalog.Open(ctx, catalog.Config{DBPath: filepath.Join(dir, "catalog.db"), RateLimit: -1}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cat.Close() })
	catURL := serveApp(t, cat.App())
	if st, b := call(t, "PUT", catURL+"/api/v1/products/SKU-1",
		`{"name":"Teapot","description":"","category":"kitchen","price":{"amountMinor":1999,"currency":"EUR"},"stock":10}`); st/100 != 2 {
		t.Fatalf("creating the product: %d %s", st, b)
	}
	ord, err := order.Open(ctx, order.Config{DBPath: filepath.Join(dir, "order.db"), CatalogURL: catURL, RatePerSecond: -1}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ord.Close() })
	ordURL := serveApp(t, ord.App())

	// The primary side: the legacy's order placement behind the ACL.
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"orderId":"legacy-1","customerId":"C1","status":"PLACED"}`))
	}))
	t.Cleanup(primary.Close)

	cfg := baseConfig(t, primary.URL, ordURL, nil, func(c *config.Config) {
		c.Routes = []config.Route{{
			Name: "orders", Path: "/api/v1/orders", Methods: []string{"POST"}, Legacy: "legacy", New: "new",
			Shadow: &config.Shadow{Percent: 100, Methods: []string{"POST"}, Writes: true},
		}}
	})
	e := startGateway(t, cfg, nil)

	body := `{"customerId":"C1","items":[{"sku":"SKU-1","quantity":2}]}`
	keys := []string{"client-key-1", "client-key-2", "", ""} // the last two get a derived key
	for _, k := range keys {
		hdr := []string{"Authorization", "Bearer s3cret", "X-Api-Key", "k3y"}
		if k != "" {
			hdr = append(hdr, "Idempotency-Key", k)
		}
		if st, b := call(t, "POST", e.url+"/api/v1/orders", body, hdr...); st != http.StatusCreated || !strings.Contains(string(b), "legacy-1") {
			t.Fatalf("primary answer %d %s, want the legacy's 201", st, b)
		}
	}
	r := e.settled(t, "orders", uint64(len(keys)))
	if r.Results["error"] != 0 || r.Results["diff"]+r.Results["match"] != uint64(len(keys)) {
		t.Fatalf("results %v: want every write compared", r.Results)
	}
	if len(r.Samples) != len(keys) {
		t.Fatalf("%d samples, want %d (the dry-run answer differs from the legacy's)", len(r.Samples), len(keys))
	}
	for _, s := range r.Samples {
		// 201 proves the order service accepted the copy: it carried an
		// Idempotency-Key even when the client sent none.
		if s.ShadowStatus != http.StatusCreated {
			t.Errorf("shadow answered %d %s, want a 201 dry run", s.ShadowStatus, s.ShadowBody)
		}
		if s.Headers["Authorization"] != "[redacted]" || s.Headers["X-Api-Key"] != "[redacted]" {
			t.Errorf("stored headers %v: secrets not redacted", s.Headers)
		}
	}

	countOrders := func() int {
		st, b := call(t, "GET", ordURL+"/api/v1/orders?customerId=C1", "")
		if st != http.StatusOK {
			t.Fatalf("listing orders: %d %s", st, b)
		}
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		return len(page.Items)
	}
	if n := countOrders(); n != 0 {
		t.Errorf("the order service holds %d orders after %d shadowed writes, want 0", n, len(keys))
	}
	_, b := call(t, "GET", catURL+"/api/v1/products/SKU-1", "")
	var p struct{ Stock int64 }
	if err := json.Unmarshal(b, &p); err != nil || p.Stock != 10 {
		t.Errorf("stock after shadowed writes = %d (%v), want 10 untouched", p.Stock, err)
	}
	// Control: the same request without the marker does create an order,
	// so the count above could have seen one.
	if st, b := call(t, "POST", ordURL+"/api/v1/orders", body, "Idempotency-Key", "client-key-1"); st != http.StatusCreated {
		t.Fatalf("direct order: %d %s", st, b)
	}
	if n := countOrders(); n != 1 {
		t.Errorf("after one direct order the service holds %d, want 1", n)
	}
}
