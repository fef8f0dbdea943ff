package catalog_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/newsvc/catalog"
)

func adjustPath(sku string) string { return "/api/v1/products/" + sku + "/stock-adjustments" }

func (e *env) stock(sku string) catalog.Product {
	e.t.Helper()
	var p catalog.Product
	r := e.do(http.MethodGet, "/api/v1/products/"+sku, nil, nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("GET %s: %s", sku, r)
	}
	r.decode(e.t, &p)
	return p
}

func TestStockAdjustmentIsIdempotent(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(c *catalog.Config) { c.Metrics = reg })
	e.put("ART-1", product("Mug", "kitchen", 800, 10))
	reserve := map[string]any{"delta": -3, "reason": "order-reserved", "reference": "ord-42"}
	key := map[string]string{"Idempotency-Key": "ord-42-ART-1"}

	first := e.do(http.MethodPost, adjustPath("ART-1"), reserve, key)
	if first.status != http.StatusCreated || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %s", first)
	}
	var sa catalog.StockAdjustment
	first.decode(t, &sa)
	if sa.StockBefore != 10 || sa.StockAfter != 7 || sa.Delta != -3 || sa.Reference != "ord-42" || sa.Version != 2 || sa.ID == "" {
		t.Errorf("adjustment = %+v", sa)
	}

	// The retry, even re-encoded with other key order and spacing, replays.
	retry := e.do(http.MethodPost, adjustPath("ART-1"), `{ "reference":"ord-42", "reason":"order-reserved", "delta":-3 }`, key)
	if retry.status != http.StatusCreated || retry.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(retry.body, first.body) {
		t.Fatalf("retry: %s (replayed %q), want the first response again", retry, retry.header.Get("Idempotent-Replayed"))
	}
	if p := e.stock("ART-1"); p.Stock != 7 || p.Version != 2 {
		t.Fatalf("after retry stock %d version %d, want 7 and 2 (applied once)", p.Stock, p.Version)
	}
	if n := len(eventsOfType(e.events(), catalog.EventStockChanged)); n != 2 { // create + one adjustment
		t.Errorf("%d stock.changed events, want 2", n)
	}

	reuse := e.do(http.MethodPost, adjustPath("ART-1"), map[string]any{"delta": -4, "reason": "order-reserved", "reference": "ord-42"}, key)
	if reuse.status != http.StatusConflict || reuse.errBody(t).Code != apierr.CodeIdempotencyReused {
		t.Errorf("same key, other body: %s", reuse)
	}
	// The same key on another product is another request too.
	e.put("ART-2", product("Cup", "kitchen", 700, 10))
	if r := e.do(http.MethodPost, adjustPath("ART-2"), reserve, key); r.status != http.StatusConflict {
		t.Errorf("same key, other SKU: %s", r)
	}
	want := `
# HELP ficus_catalog_stock_adjustments_total Stock adjustment requests by outcome: applied, replayed (same Idempotency-Key), out_of_stock, key_reused, shadow, reference_released (a late reservation refused).
# TYPE ficus_catalog_stock_adjustments_total counter
ficus_catalog_stock_adjustments_total{outcome="applied"} 1
ficus_catalog_stock_adjustments_total{outcome="key_reused"} 2
ficus_catalog_stock_adjustments_total{outcome="out_of_stock"} 0
ficus_catalog_stock_adjustments_total{outcome="reference_released"} 0
ficus_catalog_stock_adjustments_total{outcome="replayed"} 1
ficus_catalog_stock_adjustments_total{outcome="shadow"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), catalog.MetricStockAdjustments); err != nil {
		t.Error(err)
	}
}

func TestStockAdjustmentRejections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.put("ART-1", product("Mug", "kitchen", 800, 2))
	ok := map[string]any{"delta": -1, "reason": "order-reserved"}
	cases := []struct {
		name   string
		sku    string
		body   any
		header map[string]string
		status int
		code   string
	}{
		{"no key", "ART-1", ok, nil, 400, apierr.CodeIdempotencyMissing},
		{"key with spaces", "ART-1", ok, map[string]string{"Idempotency-Key": "a b"}, 400, apierr.CodeValidation},
		{"unknown product", "ART-404", ok, map[string]string{"Idempotency-Key": "k1"}, 404, apierr.CodeNotFound},
		{"oversell", "ART-1", map[string]any{"delta": -3, "reason": "order-reserved"}, map[string]string{"Idempotency-Key": "k2"}, 422, apierr.CodeOutOfStock},
		{"zero delta", "ART-1", map[string]any{"delta": 0, "reason": "correction"}, map[string]string{"Idempotency-Key": "k3"}, 400, apierr.CodeValidation},
		{"unknown reason", "ART-1", map[string]any{"delta": 1, "reason": "gift"}, map[string]string{"Idempotency-Key": "k4"}, 400, apierr.CodeValidation},
		{"delta as string", "ART-1", `{"delta":"-1","reason":"correction"}`, map[string]string{"Idempotency-Key": "k5"}, 400, apierr.CodeMalformed},
		{"unknown field", "ART-1", `{"delta":-1,"reason":"correction","force":true}`, map[string]string{"Idempotency-Key": "k6"}, 400, apierr.CodeMalformed},
		{"form body", "ART-1", "delta=-1", map[string]string{"Idempotency-Key": "k7", "Content-Type": "application/x-www-form-urlencoded"}, 415, apierr.CodeUnsupportedMedia},
		{"too much stock", "ART-1", map[string]any{"delta": 1_000_000_000, "reason": "restock"}, map[string]string{"Idempotency-Key": "k8"}, 422, apierr.CodeBusinessRule},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := e.do(http.MethodPost, adjustPath(tc.sku), tc.body, tc.header)
			if r.status != tc.status || r.errBody(t).Code != tc.code {
				t.Errorf("got %s, want %d %s", r, tc.status, tc.code)
			}
		})
	}
	t.Cleanup(func() {
		if p := e.stock("ART-1"); p.Stock != 2 || p.Version != 1 {
			t.Errorf("rejected adjustments changed the product: %+v", p)
		}
		// A refused request is not remembered: the key is still free.
		if r := e.do(http.MethodPost, adjustPath("ART-1"), ok, map[string]string{"Idempotency-Key": "k2"}); r.status != http.StatusCreated {
			t.Errorf("key of a refused request: %s", r)
		}
	})
	t.Run("oversell details", func(t *testing.T) {
		t.Parallel()
		r := e.do(http.MethodPost, adjustPath("ART-1"), map[string]any{"delta": -5, "reason": "order-reserved"}, map[string]string{"Idempotency-Key": "k9"})
		var b struct {
			Details struct {
				SKU       string `json:"sku"`
				Requested int64  `json:"requested"`
				Available int64  `json:"available"`
			} `json:"details"`
		}
		r.decode(t, &b)
		if b.Details.SKU != "ART-1" || b.Details.Requested != 5 || b.Details.Available != 2 {
			t.Errorf("details %+v", b.Details)
		}
	})
}

func TestConcurrentReservationsNeverOversell(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const stock, buyers = 10, 30
	e.put("HOT-1", product("Console", "games", 49900, stock))

	statuses := make([]int, buyers)
	var wg sync.WaitGroup
	for i := range buyers {
		wg.Go(func() {
			r := e.do(http.MethodPost, adjustPath("HOT-1"), map[string]any{"delta": -1, "reason": "order-reserved", "reference": fmt.Sprintf("ord-%d", i)},
				map[string]string{"Idempotency-Key": fmt.Sprintf("ord-%d-HOT-1", i)})
			statuses[i] = r.status
		})
	}
	wg.Wait()
	won, lost := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusCreated:
			won++
		case http.StatusUnprocessableEntity:
			lost++
		default:
			t.Errorf("unexpected status %d", s)
		}
	}
	if won != stock || lost != buyers-stock {
		t.Fatalf("%d reservations succeeded and %d were refused; want %d and %d", won, lost, stock, buyers-stock)
	}
	if p := e.stock("HOT-1"); p.Stock != 0 || p.Available || p.Version != 1+stock {
		t.Fatalf("after the rush: %+v", p)
	}
	var afters []int64
	for _, ev := range eventsOfType(e.events(), catalog.EventStockChanged)[1:] {
		var sc catalog.StockChanged
		if err := json.Unmarshal(ev.Data, &sc); err != nil {
			t.Fatal(err)
		}
		afters = append(afters, sc.StockAfter)
	}
	if !slices.Equal(afters, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}) {
		t.Errorf("stock.changed stockAfter sequence %v, want 9..0", afters)
	}
}

func TestConcurrentRetriesWithOneKeyApplyOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.put("ART-3", product("Pan", "kitchen", 2500, 5))
	const retries = 8
	bodies := make([][]byte, retries)
	statuses := make([]int, retries)
	var wg sync.WaitGroup
	for i := range retries {
		wg.Go(func() {
			r := e.do(http.MethodPost, adjustPath("ART-3"), map[string]any{"delta": -2, "reason": "order-reserved", "reference": "ord-7"},
				map[string]string{"Idempotency-Key": "ord-7-ART-3"})
			statuses[i], bodies[i] = r.status, r.body
		})
	}
	wg.Wait()
	for i := range retries {
		if statuses[i] != http.StatusCreated || !bytes.Equal(bodies[i], bodies[0]) {
			t.Errorf("retry %d: %d %s, want 201 with the same body as %s", i, statuses[i], bodies[i], bodies[0])
		}
	}
	if p := e.stock("ART-3"); p.Stock != 3 {
		t.Errorf("stock %d after %d concurrent retries, want 3 (applied once)", p.Stock, retries)
	}
}
