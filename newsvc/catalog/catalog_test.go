package catalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/newsvc/catalog"
	"github.com/ficus-gw/ficus/newsvc/outbox"
)

func TestOpenAPIIsServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.do(http.MethodGet, "/openapi.yaml", nil, nil)
	if r.status != http.StatusOK || !bytes.Equal(r.body, catalog.OpenAPI) {
		t.Fatalf("GET /openapi.yaml = %d, %d bytes; want the embedded document", r.status, len(r.body))
	}
	if ct := r.header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type = %q", ct)
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	t.Parallel()
	_, err := catalog.Open(context.Background(), catalog.Config{MaxBodyBytes: -1, IdempotencyTTL: -time.Second,
		Subscribers: []outbox.Subscriber{{Name: "search", URL: "ftp://search.internal/hook"}}}, nil)
	if err == nil {
		t.Fatal("Open accepted a config without DBPath")
	}
	for _, want := range []string{"DBPath", "MaxBodyBytes", "IdempotencyTTL", "ftp://search.internal/hook"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestProductLifecycleEmitsEventsWithItsChanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const sku = "ART-1001"

	if r := e.do(http.MethodGet, "/api/v1/products/"+sku, nil, nil); r.status != http.StatusNotFound || r.errBody(t).Code != apierr.CodeNotFound {
		t.Fatalf("unknown product: %s", r)
	}

	r := e.do(http.MethodPut, "/api/v1/products/"+sku, product("Lamp", "lighting", 4999, 5), map[string]string{apierr.RequestIDHeader: "req-create"})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %s", r)
	}
	var created catalog.Product
	r.decode(t, &created)
	if created.Version != 1 || created.Stock != 5 || !created.Available || created.Price != (catalog.Money{AmountMinor: 4999, Currency: "EUR"}) {
		t.Errorf("created = %+v", created)
	}
	if !created.UpdatedAt.Equal(e.clock.Now()) || created.UpdatedAt.Location() != time.UTC {
		t.Errorf("updatedAt = %v, want the injected clock's %v in UTC", created.UpdatedAt, e.clock.Now())
	}
	if r.header.Get("ETag") != `"1"` || r.header.Get("Location") != "/api/v1/products/"+sku {
		t.Errorf("ETag %q Location %q", r.header.Get("ETag"), r.header.Get("Location"))
	}

	// An identical PUT changes nothing: same version, no event.
	e.clock.Advance(time.Minute)
	if again := e.put(sku, product("Lamp", "lighting", 4999, 5)); again.Version != 1 || !again.UpdatedAt.Equal(created.UpdatedAt) {
		t.Errorf("identical PUT changed the product: %+v", again)
	}

	// A price change bumps the version but is no stock change.
	e.clock.Advance(time.Minute)
	repriced := e.put(sku, product("Lamp", "lighting", 3999, 5))
	if repriced.Version != 2 || repriced.Price.AmountMinor != 3999 {
		t.Errorf("repriced = %+v", repriced)
	}
	// Selling out makes it unavailable.
	soldOut := e.put(sku, product("Lamp", "lighting", 3999, 0))
	if soldOut.Version != 3 || soldOut.Available {
		t.Errorf("sold out = %+v", soldOut)
	}

	r = e.do(http.MethodGet, "/api/v1/products/"+sku, nil, nil)
	var got catalog.Product
	r.decode(t, &got)
	if r.status != http.StatusOK || got != soldOut || r.header.Get("ETag") != `"3"` {
		t.Errorf("GET = %s (ETag %s), want %+v", r, r.header.Get("ETag"), soldOut)
	}

	events := e.events()
	types := make([]string, len(events))
	for i, ev := range events {
		types[i] = ev.Type
		if ev.AggregateID != sku || ev.SchemaVersion != 1 {
			t.Errorf("event %d: %+v", i, ev)
		}
	}
	want := []string{"product.updated", "stock.changed", "product.updated", "product.updated", "stock.changed"}
	if !slices.Equal(types, want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	if events[0].CorrelationID != "req-create" {
		t.Errorf("correlationId = %q, want the creating request's id", events[0].CorrelationID)
	}
	var first catalog.Product
	if err := json.Unmarshal(events[0].Data, &first); err != nil || first != created {
		t.Errorf("product.updated data = %s, want the created product", events[0].Data)
	}
	var stock catalog.StockChanged
	if err := json.Unmarshal(events[4].Data, &stock); err != nil {
		t.Fatal(err)
	}
	if stock != (catalog.StockChanged{SKU: sku, Delta: -5, StockBefore: 5, StockAfter: 0, Reason: "product-upsert", Reference: events[4].CorrelationID, Version: 3}) {
		t.Errorf("stock.changed data = %+v", stock)
	}

	// Optimistic concurrency: If-Match with a stale ETag is refused.
	r = e.do(http.MethodPut, "/api/v1/products/"+sku, product("Lamp", "lighting", 1, 1), map[string]string{"If-Match": `"2"`})
	if r.status != http.StatusConflict || r.errBody(t).Code != apierr.CodeConflict {
		t.Errorf("stale If-Match: %s", r)
	}
	if r := e.do(http.MethodPut, "/api/v1/products/"+sku, product("Lamp", "lighting", 1, 1), map[string]string{"If-Match": `"3"`}); r.status != http.StatusOK {
		t.Errorf("current If-Match: %s", r)
	}
}

func TestWritesRejectBadInputWithoutSideEffects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *catalog.Config) { c.MaxBodyBytes = 4 << 10 })
	valid := `{"name":"Chair","category":"furniture","price":{"amountMinor":100,"currency":"EUR"},"stock":1}`
	nested := strings.Repeat(`{"a":`, 500) + "1" + strings.Repeat("}", 500)
	cases := []struct {
		name   string
		path   string
		body   string
		header map[string]string
		status int
		code   string
	}{
		{"text/plain", "/api/v1/products/ART-1", valid, map[string]string{"Content-Type": "text/plain"}, 415, apierr.CodeUnsupportedMedia},
		{"no content type", "/api/v1/products/ART-1", valid, map[string]string{"Content-Type": ""}, 415, apierr.CodeUnsupportedMedia},
		{"empty body", "/api/v1/products/ART-1", "", nil, 400, apierr.CodeMalformed},
		{"not JSON", "/api/v1/products/ART-1", `{"name":`, nil, 400, apierr.CodeMalformed},
		{"array", "/api/v1/products/ART-1", `[1,2]`, nil, 400, apierr.CodeMalformed},
		{"two values", "/api/v1/products/ART-1", valid + valid, nil, 400, apierr.CodeMalformed},
		{"unknown field", "/api/v1/products/ART-1", strings.Replace(valid, `"stock":1`, `"stock":1,"admin":true`, 1), nil, 400, apierr.CodeMalformed},
		{"wrong type", "/api/v1/products/ART-1", strings.Replace(valid, `"amountMinor":100`, `"amountMinor":"100"`, 1), nil, 400, apierr.CodeMalformed},
		{"fraction", "/api/v1/products/ART-1", strings.Replace(valid, `"stock":1`, `"stock":1.5`, 1), nil, 400, apierr.CodeMalformed},
		{"deeply nested", "/api/v1/products/ART-1", `{"name":` + nested + `}`, nil, 400, apierr.CodeMalformed},
		{"huge", "/api/v1/products/ART-1", `{"name":"` + strings.Repeat("x", 8<<10) + `"}`, nil, 413, apierr.CodeTooLarge},
		{"missing fields", "/api/v1/products/ART-1", `{"name":"Chair"}`, nil, 400, apierr.CodeValidation},
		{"null body", "/api/v1/products/ART-1", `null`, nil, 400, apierr.CodeValidation},
		{"negative stock", "/api/v1/products/ART-1", strings.Replace(valid, `"stock":1`, `"stock":-1`, 1), nil, 400, apierr.CodeValidation},
		{"lowercase currency", "/api/v1/products/ART-1", strings.Replace(valid, `EUR`, `eur`, 1), nil, 400, apierr.CodeValidation},
		{"foreign currency", "/api/v1/products/ART-1", strings.Replace(valid, `EUR`, `USD`, 1), nil, 422, apierr.CodeBusinessRule},
		{"bad category", "/api/v1/products/ART-1", strings.Replace(valid, `furniture`, `Furniture!`, 1), nil, 400, apierr.CodeValidation},
		{"bad sku", "/api/v1/products/ART%201", valid, nil, 400, apierr.CodeValidation},
		{"bad If-Match", "/api/v1/products/ART-1", valid, map[string]string{"If-Match": "abc"}, 400, apierr.CodeValidation},
		{"If-Match on absent product", "/api/v1/products/ART-1", valid, map[string]string{"If-Match": `"1"`}, 409, apierr.CodeConflict},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := e.do(http.MethodPut, tc.path, tc.body, tc.header)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			b := r.errBody(t)
			if b.Code != tc.code || b.Message == "" {
				t.Errorf("body %+v, want code %s and a message", b, tc.code)
			}
			if tc.status != 413 && (b.RequestID == "" || b.RequestID != r.header.Get(apierr.RequestIDHeader)) {
				t.Errorf("requestId %q does not match header %q", b.RequestID, r.header.Get(apierr.RequestIDHeader))
			}
		})
	}
	t.Run("missing fields are all listed", func(t *testing.T) {
		t.Parallel()
		r := e.do(http.MethodPut, "/api/v1/products/ART-2", `{"name":""}`, nil)
		var b struct {
			Details []struct{ Field string } `json:"details"`
		}
		r.decode(t, &b)
		var fields []string
		for _, d := range b.Details {
			fields = append(fields, d.Field)
		}
		if !slices.Equal(fields, []string{"name", "category", "price", "stock"}) {
			t.Errorf("details fields %v", fields)
		}
	})
	t.Cleanup(func() {
		if r := e.do(http.MethodGet, "/api/v1/products/ART-1", nil, nil); r.status != http.StatusNotFound {
			t.Errorf("a rejected write created the product: %s", r)
		}
		if ev := e.events(); len(ev) != 0 {
			t.Errorf("rejected writes emitted %d events", len(ev))
		}
	})
}

func TestUnknownRoutesAndMethodsAreStructured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/nope", 404, apierr.CodeNotFound},
		{http.MethodGet, "/api/v1/products/ART-1/", 404, apierr.CodeNotFound},
		{http.MethodDelete, "/api/v1/products/ART-1", 405, apierr.CodeMethodNotAllowed},
		{http.MethodGet, "/api/v1/products/" + strings.Repeat("A", 65), 404, apierr.CodeNotFound},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			r := e.do(tc.method, tc.path, nil, nil)
			if r.status != tc.status || r.errBody(t).Code != tc.code {
				t.Errorf("got %s, want %d %s", r, tc.status, tc.code)
			}
		})
	}
}

func TestShadowWritesChangeNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	shadow := map[string]string{catalog.ShadowHeader: "1"}

	r := e.do(http.MethodPut, "/api/v1/products/ART-7", product("Desk", "furniture", 20000, 3), shadow)
	var answered catalog.Product
	r.decode(t, &answered)
	if r.status != http.StatusCreated || answered.Version != 1 || answered.Stock != 3 {
		t.Fatalf("shadow create answered %s", r)
	}
	if r := e.do(http.MethodGet, "/api/v1/products/ART-7", nil, nil); r.status != http.StatusNotFound {
		t.Fatalf("shadow PUT created the product: %s", r)
	}
	if ev := e.events(); len(ev) != 0 {
		t.Fatalf("shadow PUT emitted %d events (the events were appended, then rolled back)", len(ev))
	}

	e.put("ART-7", product("Desk", "furniture", 20000, 3))
	before := len(e.events())
	adj := map[string]any{"delta": -2, "reason": "order-reserved", "reference": "ord-1"}
	r = e.do(http.MethodPost, "/api/v1/products/ART-7/stock-adjustments", adj, map[string]string{catalog.ShadowHeader: "1", "Idempotency-Key": "k-shadow"})
	var sa catalog.StockAdjustment
	r.decode(t, &sa)
	if r.status != http.StatusCreated || sa.StockAfter != 1 {
		t.Fatalf("shadow adjustment answered %s", r)
	}
	if r := e.do(http.MethodPost, "/api/v1/products/ART-7/stock-adjustments", map[string]any{"delta": -9, "reason": "order-reserved"},
		map[string]string{catalog.ShadowHeader: "1", "Idempotency-Key": "k-shadow-2"}); r.status != 422 || r.errBody(t).Code != apierr.CodeOutOfStock {
		t.Errorf("shadow oversell answered %s, want the real verdict 422", r)
	}
	var p catalog.Product
	e.do(http.MethodGet, "/api/v1/products/ART-7", nil, nil).decode(t, &p)
	if p.Stock != 3 || p.Version != 1 {
		t.Errorf("shadow adjustment changed the product: %+v", p)
	}
	if after := len(e.events()); after != before {
		t.Errorf("shadow adjustment emitted %d events", after-before)
	}
	// The shadow did not consume the key: a real request with it and a
	// different body is a first use, not a reuse.
	r = e.do(http.MethodPost, "/api/v1/products/ART-7/stock-adjustments", map[string]any{"delta": -1, "reason": "order-reserved"},
		map[string]string{"Idempotency-Key": "k-shadow"})
	if r.status != http.StatusCreated || r.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("real request after shadow: %s", r)
	}
}

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(c *catalog.Config) { c.RateLimit = 2; c.RateBurst = 2; c.Metrics = reg })
	for i := range 2 {
		if r := e.do(http.MethodGet, "/api/v2/products", nil, nil); r.status != http.StatusOK {
			t.Fatalf("request %d within the burst: %s", i, r)
		}
	}
	r := e.do(http.MethodGet, "/api/v2/products", nil, nil)
	if r.status != http.StatusTooManyRequests || r.errBody(t).Code != apierr.CodeRateLimited || r.header.Get("Retry-After") != "1" {
		t.Fatalf("over the limit: %s Retry-After %q", r, r.header.Get("Retry-After"))
	}
	e.clock.Advance(500 * time.Millisecond) // one token at 2/s
	if r := e.do(http.MethodGet, "/api/v2/products", nil, nil); r.status != http.StatusOK {
		t.Fatalf("after refill: %s", r)
	}
	if r := e.do(http.MethodGet, "/api/v2/products", nil, nil); r.status != http.StatusTooManyRequests {
		t.Fatalf("refill gave more than one token: %s", r)
	}
	want := `
# HELP ficus_catalog_rate_limited_total Requests answered 429 by the catalog's own token bucket.
# TYPE ficus_catalog_rate_limited_total counter
ficus_catalog_rate_limited_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), catalog.MetricRateLimited); err != nil {
		t.Error(err)
	}
}

func TestEventsReachWebhookSubscribers(t *testing.T) {
	t.Parallel()
	got := make(chan outbox.Envelope, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env outbox.Envelope
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got <- env
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	e := newEnv(t, func(c *catalog.Config) {
		c.Subscribers = []outbox.Subscriber{{Name: "search", URL: hook.URL, Types: []string{catalog.EventStockChanged}}}
		c.WebhookClient = hook.Client()
	})
	e.put("ART-9", product("Rug", "textiles", 9900, 2))
	r := e.do(http.MethodPost, "/api/v1/products/ART-9/stock-adjustments", map[string]any{"delta": 5, "reason": "restock"},
		map[string]string{"Idempotency-Key": "restock-1", apierr.RequestIDHeader: "req-restock"})
	if r.status != http.StatusCreated {
		t.Fatal(r)
	}
	var received []outbox.Envelope
	deadline := time.After(waitLimit)
	for len(received) < 2 {
		select {
		case env := <-got:
			received = append(received, env)
		case <-deadline:
			t.Fatalf("webhook received %d of 2 events", len(received))
		}
	}
	var first, second catalog.StockChanged
	_ = json.Unmarshal(received[0].Data, &first)
	_ = json.Unmarshal(received[1].Data, &second)
	if received[0].Type != catalog.EventStockChanged || first.StockAfter != 2 || second.StockAfter != 7 || second.Reason != "restock" {
		t.Errorf("webhook got %+v then %+v", first, second)
	}
	if received[1].CorrelationID != "req-restock" {
		t.Errorf("correlationId %q, want the request id", received[1].CorrelationID)
	}
}

func TestIdempotencyKeysExpire(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *catalog.Config) { c.IdempotencyTTL = time.Hour })
	e.put("ART-5", product("Vase", "decor", 1500, 10))
	post := func(delta int) resp {
		return e.do(http.MethodPost, "/api/v1/products/ART-5/stock-adjustments", map[string]any{"delta": delta, "reason": "correction"},
			map[string]string{"Idempotency-Key": "k-exp"})
	}
	if r := post(-1); r.status != http.StatusCreated {
		t.Fatal(r)
	}
	e.clock.Advance(59 * time.Minute)
	if r := post(-2); r.status != http.StatusConflict || r.errBody(t).Code != apierr.CodeIdempotencyReused {
		t.Fatalf("within the TTL: %s", r)
	}
	e.clock.Advance(2 * time.Minute)
	r := post(-2)
	var sa catalog.StockAdjustment
	r.decode(t, &sa)
	if r.status != http.StatusCreated || r.header.Get("Idempotent-Replayed") != "" || sa.StockAfter != 7 {
		t.Fatalf("after the TTL the key is new again: %s", r)
	}
}
