package order

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPlaceOrderSnapshotsPricesAndReservesStock(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	h.catalog.add("A", 1999, "EUR", 10)
	h.catalog.add("B", 500, "EUR", 10)

	res := h.place("k1", orderBody("c1", "A", 2, "B", 3), "X-Request-Id", "req-place-1")
	wantStatus(t, res, http.StatusCreated, "")
	o := res.order(t)
	if loc := res.header.Get("Location"); loc != "/api/v1/orders/"+o.ID {
		t.Fatalf("Location %q for order %s", loc, o.ID)
	}
	if o.Status != StatusPlaced || o.Currency != "EUR" || o.Total != (Money{AmountMinor: 5498, Currency: "EUR"}) || o.Version != 1 {
		t.Fatalf("order %+v", o)
	}
	if o.Lines[0].LineTotal.AmountMinor != 3998 || o.Lines[1].LineTotal.AmountMinor != 1500 || o.Lines[0].Name != "Product A" {
		t.Fatalf("lines %+v", o.Lines)
	}
	if a, b := h.catalog.stock("A"), h.catalog.stock("B"); a != 8 || b != 7 {
		t.Fatalf("stock A=%d B=%d, want 8 and 7", a, b)
	}

	// A later price change does not touch the placed order.
	h.catalog.add("A", 9999, "EUR", 8)
	got := h.do(http.MethodGet, "/api/v1/orders/"+o.ID, "")
	wantStatus(t, got, http.StatusOK, "")
	if g := got.order(t); g.Total.AmountMinor != 5498 || g.Lines[0].UnitPrice.AmountMinor != 1999 {
		t.Fatalf("stored order changed with the catalog price: %+v", g)
	}

	evs := h.events()
	if len(evs) != 1 || evs[0].Type != "order.created" || evs[0].AggregateID != o.ID ||
		evs[0].CorrelationID != "req-place-1" || evs[0].SchemaVersion != 1 {
		t.Fatalf("events %+v", evs)
	}
	var data Order
	if err := json.Unmarshal(evs[0].Data, &data); err != nil || data.Total != o.Total {
		t.Fatalf("event data %s (%v)", evs[0].Data, err)
	}
}

func TestPlaceOrderCurrency(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	h.catalog.add("E", 100, "EUR", 10)
	h.catalog.add("U", 100, "USD", 10)
	tests := []struct {
		name  string
		body  string
		want  int
		code  string
		field string
	}{
		{"mixed currencies", orderBody("c", "E", 1, "U", 1), 422, "INVALID_ITEM", "items[1].sku"},
		{"explicit currency differs", `{"customerId":"c","currency":"USD","items":[{"sku":"E","quantity":1}]}`, 422, "INVALID_ITEM", "items[0].sku"},
		{"explicit currency matches", `{"customerId":"c","currency":"USD","items":[{"sku":"U","quantity":1}]}`, 201, "", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h.in(t)
			res := h.place(fmt.Sprintf("cur-%d", i), tt.body)
			wantStatus(t, res, tt.want, tt.code)
			if tt.field != "" {
				if d, _ := res.errBody(t).Details.(map[string]any); d["field"] != tt.field {
					t.Fatalf("details %v, want field %s", res.errBody(t).Details, tt.field)
				}
			}
		})
	}
}

func TestPlaceOrderInvalidItems(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	h.catalog.add("A", 100, "EUR", 10)

	res := h.place("k", orderBody("c1", "A", 1, "NOPE", 1, "GONE", 1))
	wantStatus(t, res, http.StatusUnprocessableEntity, "INVALID_ITEM")
	d := res.errBody(t).Details.(map[string]any)
	if d["field"] != "items[1].sku" || len(d["items"].([]any)) != 2 {
		t.Fatalf("details %v", d)
	}
	if h.catalog.stock("A") != 10 || h.countRows("orders") != 0 || len(h.events()) != 0 {
		t.Fatal("a refused order changed something")
	}
	// The refusal is not replayed: the key is free for a corrected order.
	wantStatus(t, h.place("k", orderBody("c1", "A", 1)), http.StatusCreated, "")
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	h.catalog.add("A", 250, "EUR", 100)

	first := h.place("same", orderBody("c1", "A", 2))
	wantStatus(t, first, http.StatusCreated, "")

	t.Run("same body replays byte for byte", func(t *testing.T) {
		h := h.in(t)
		// Same content, other whitespace and key order: the canonical hash matches.
		again := h.place("same", `{ "items": [ {"quantity": 2, "sku": "A"} ], "customerId": "c1" }`)
		wantStatus(t, again, http.StatusCreated, "")
		if !bytes.Equal(again.body, first.body) || again.header.Get("Location") != first.header.Get("Location") {
			t.Fatalf("replay differs:\n%s\n%s", first.body, again.body)
		}
	})
	t.Run("different body is 409", func(t *testing.T) {
		h := h.in(t)
		wantStatus(t, h.place("same", orderBody("c1", "A", 3)), http.StatusConflict, "IDEMPOTENCY_KEY_REUSED")
	})
	t.Run("missing key is 400", func(t *testing.T) {
		h := h.in(t)
		res := h.do(http.MethodPost, "/api/v1/orders", orderBody("c1", "A", 1))
		wantStatus(t, res, http.StatusBadRequest, "IDEMPOTENCY_KEY_REQUIRED")
	})
	t.Run("control characters in key are 400", func(t *testing.T) {
		h := h.in(t)
		wantStatus(t, h.place("bad key", orderBody("c1", "A", 1)), http.StatusBadRequest, "VALIDATION_FAILED")
	})
	if n := h.countRows("orders"); n != 1 {
		t.Fatalf("%d orders, want 1", n)
	}
	if s := h.catalog.stock("A"); s != 98 {
		t.Fatalf("stock %d, want 98 (reserved once)", s)
	}
}

func TestIdempotencyConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	h.catalog.add("A", 250, "EUR", 1000)
	h.catalog.add("B", 100, "EUR", 1000)

	const n = 100
	body := orderBody("c-concurrent", "A", 3, "B", 1)
	responses := make([]*response, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			responses[i] = h.place("concurrent-key", body)
		})
	}
	close(start)
	wg.Wait()

	for i, r := range responses {
		if r.status != http.StatusCreated {
			t.Fatalf("response %d: %d %s", i, r.status, r.body)
		}
		if !bytes.Equal(r.body, responses[0].body) || r.header.Get("Location") != responses[0].header.Get("Location") {
			t.Fatalf("response %d differs from the first:\n%s\n%s", i, r.body, responses[0].body)
		}
	}
	if got := h.countRows("orders"); got != 1 {
		t.Fatalf("%d orders, want exactly 1", got)
	}
	if a, b := h.catalog.stock("A"), h.catalog.stock("B"); a != 997 || b != 999 {
		t.Fatalf("stock A=%d B=%d: reserved more than once", a, b)
	}
	if evs := h.events(); len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	if p, r := testutil.ToFloat64(h.svc.metrics.placed), testutil.ToFloat64(h.svc.metrics.replays); p != 1 || r != n-1 {
		t.Fatalf("metrics placed=%v replays=%v, want 1 and %d", p, r, n-1)
	}
}

func TestIdempotencyStaleClaimIsTakenOver(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, func(c *Config) { c.IdempotencyLease = time.Minute })
	h.catalog.add("A", 100, "EUR", 10)
	body := orderBody("c1", "A", 1)
	req := PlaceRequest{CustomerID: "c1", Items: []PlaceItem{{Sku: "A", Quantity: 1}}}
	// A process died holding the key two minutes ago, after reserving line A.
	if _, err := h.svc.db.W.Exec(`INSERT INTO idempotency_keys (key, request_hash, order_id, state, claimed_at)
		VALUES ('stale', ?, 'dead-order', 'pending', ?)`, req.Hash(), formatTime(h.clock.Now().Add(-2*time.Minute))); err != nil {
		t.Fatal(err)
	}
	h.catalog.mu.Lock()
	h.catalog.products["A"].stock--
	h.catalog.replies[reserveKey("dead-order", "A")] = fakeReply{status: 201, body: []byte(`{}`)}
	h.catalog.mu.Unlock()

	res := h.place("stale", body)
	wantStatus(t, res, http.StatusCreated, "")
	if o := res.order(t); o.ID != "dead-order" {
		t.Fatalf("order id %s, want the claim's dead-order", o.ID)
	}
	if s := h.catalog.stock("A"); s != 9 {
		t.Fatalf("stock %d, want 9: the takeover must replay the reservation, not repeat it", s)
	}
}

func TestIdempotencyFreshClaimMakesDuplicateWait(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, func(c *Config) { c.IdempotencyWait = 50 * time.Millisecond })
	h.catalog.add("A", 100, "EUR", 10)
	req := PlaceRequest{CustomerID: "c1", Items: []PlaceItem{{Sku: "A", Quantity: 1}}}
	if _, err := h.svc.db.W.Exec(`INSERT INTO idempotency_keys (key, request_hash, order_id, state, claimed_at)
		VALUES ('busy', ?, 'other', 'pending', ?)`, req.Hash(), formatTime(h.clock.Now())); err != nil {
		t.Fatal(err)
	}
	res := h.place("busy", orderBody("c1", "A", 1))
	wantStatus(t, res, http.StatusConflict, "IDEMPOTENCY_KEY_IN_USE")
	if res.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}

func TestCatalogDownAnswers503AndOpensBreaker(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := startWithFake(t, func(c *Config) {
		c.BreakerFailures = 3
		c.BreakerOpenFor = time.Hour
		c.Metrics = reg
	})
	h.catalog.add("A", 100, "EUR", 10)
	h.catalog.setFailing(true)

	for i := range 3 {
		res := h.place(fmt.Sprintf("down-%d", i), orderBody("c1", "A", 1))
		wantStatus(t, res, http.StatusServiceUnavailable, "DEPENDENCY_UNAVAILABLE")
		if res.header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
	}
	before, _ := h.catalog.counts()
	// The breaker is open: the Catalog is not called, even once it recovers.
	h.catalog.setFailing(false)
	res := h.place("down-open", orderBody("c1", "A", 1))
	wantStatus(t, res, http.StatusServiceUnavailable, "DEPENDENCY_UNAVAILABLE")
	if ra := res.header.Get("Retry-After"); ra != "3600" {
		t.Fatalf("Retry-After %q, want 3600 (the breaker's open period)", ra)
	}
	if after, _ := h.catalog.counts(); after != before {
		t.Fatalf("open breaker let %d calls through", after-before)
	}
	if h.countRows("orders") != 0 || h.countRows("idempotency_keys") != 0 || len(h.events()) != 0 {
		t.Fatal("a failed placement wrote something")
	}
	want := `
# HELP ficus_order_catalog_breaker_open 1 while the Catalog circuit breaker is open or half-open, else 0.
# TYPE ficus_order_catalog_breaker_open gauge
ficus_order_catalog_breaker_open 1
# HELP ficus_order_catalog_calls_total Calls to the Catalog by outcome: ok, failure (transport, timeout, 5xx), rejected (breaker open).
# TYPE ficus_order_catalog_calls_total counter
ficus_order_catalog_calls_total{outcome="failure"} 3
ficus_order_catalog_calls_total{outcome="ok"} 0
ficus_order_catalog_calls_total{outcome="rejected"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), MetricBreakerOpen, MetricCatalogCalls); err != nil {
		t.Fatal(err)
	}
}

func TestCatalogUnreachable(t *testing.T) {
	t.Parallel()
	f := newFakeCatalog(t)
	url := f.srv.URL
	f.srv.Close() // nothing listens there any more
	h := startService(t, url, nil)
	res := h.place("k", orderBody("c1", "A", 1))
	wantStatus(t, res, http.StatusServiceUnavailable, "DEPENDENCY_UNAVAILABLE")
	if h.countRows("orders") != 0 {
		t.Fatal("order written")
	}
}

func TestCatalogTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(slow)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: frees the handlers so Close returns
	h := startService(t, srv.URL, func(c *Config) { c.CatalogTimeout = 50 * time.Millisecond })
	wantStatus(t, h.place("k", orderBody("c1", "A", 1)), http.StatusServiceUnavailable, "DEPENDENCY_UNAVAILABLE")
}

func TestCompensationReleasesEarlierLines(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	h.catalog.add("A", 100, "EUR", 10)
	h.catalog.add("B", 100, "EUR", 10)
	h.catalog.add("C", 100, "EUR", 1)

	res := h.place("k", orderBody("c1", "A", 2, "B", 3, "C", 5))
	wantStatus(t, res, http.StatusUnprocessableEntity, "OUT_OF_STOCK")
	if d := res.errBody(t).Details.(map[string]any); d["field"] != "items[2].quantity" || d["sku"] != "C" {
		t.Fatalf("details %v", d)
	}
	for sku, want := range map[string]int64{"A": 10, "B": 10, "C": 1} {
		if got := h.catalog.stock(sku); got != want {
			t.Errorf("stock %s = %d, want %d (leaked)", sku, got, want)
		}
	}
	if h.countRows("orders") != 0 || h.countRows("order_lines") != 0 || h.countRows("pending_releases") != 0 || len(h.events()) != 0 {
		t.Fatal("half-written order")
	}
}

func TestFailedCommitRollsBackEventAndReleasesStock(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	h.catalog.add("A", 100, "EUR", 10)
	// Fail the placement's transaction at its last statement, after the
	// order and its event were written in it.
	if _, err := h.svc.db.W.Exec(`CREATE TRIGGER fail_finish BEFORE UPDATE OF state ON idempotency_keys
		BEGIN SELECT RAISE(ABORT, 'injected failure'); END`); err != nil {
		t.Fatal(err)
	}
	res := h.place("k", orderBody("c1", "A", 4))
	wantStatus(t, res, http.StatusInternalServerError, "INTERNAL")
	if strings.Contains(string(res.body), "injected") {
		t.Fatalf("internal error text leaked: %s", res.body)
	}
	if h.countRows("orders") != 0 || h.countRows("outbox_events") != 0 {
		t.Fatal("rolled-back transaction left an order or an event")
	}
	if s := h.catalog.stock("A"); s != 10 {
		t.Fatalf("stock %d, want 10 after compensation", s)
	}
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	h.catalog.add("A", 100, "EUR", 10)
	newOrder := func(h *harness, key string) string {
		res := h.place(key, orderBody("c1", "A", 2))
		wantStatus(h.t, res, http.StatusCreated, "")
		return res.order(h.t).ID
	}
	post := func(h *harness, id, action string) *response {
		return h.do(http.MethodPost, "/api/v1/orders/"+id+"/"+action, "", "X-Request-Id", "req-"+action)
	}

	t.Run("pay then ship", func(t *testing.T) {
		h := h.in(t)
		id := newOrder(h, "life")
		paid := post(h, id, "pay")
		wantStatus(t, paid, http.StatusOK, "")
		if o := paid.order(t); o.Status != StatusPaid || o.Version != 2 {
			t.Fatalf("after pay: %+v", o)
		}
		shipped := post(h, id, "ship")
		wantStatus(t, shipped, http.StatusOK, "")
		if o := shipped.order(t); o.Status != StatusShipped || o.Version != 3 {
			t.Fatalf("after ship: %+v", o)
		}
		res := post(h, id, "cancel")
		wantStatus(t, res, http.StatusConflict, "ILLEGAL_STATE_TRANSITION")
		var types []string
		for _, e := range h.events() {
			if e.AggregateID == id {
				types = append(types, e.Type)
			}
		}
		if strings.Join(types, ",") != "order.created,order.paid,order.shipped" {
			t.Fatalf("events %v", types)
		}
	})
	t.Run("cancel releases stock once", func(t *testing.T) {
		h := h.in(t)
		before := h.catalog.stock("A")
		id := newOrder(h, "to-cancel")
		res := post(h, id, "cancel")
		wantStatus(t, res, http.StatusOK, "")
		if res.order(t).Status != StatusCancelled {
			t.Fatal("not cancelled")
		}
		if s := h.catalog.stock("A"); s != before {
			t.Fatalf("stock %d, want %d back after cancel", s, before)
		}
		wantStatus(t, post(h, id, "cancel"), http.StatusConflict, "ILLEGAL_STATE_TRANSITION")
		wantStatus(t, post(h, id, "pay"), http.StatusConflict, "ILLEGAL_STATE_TRANSITION")
		if s := h.catalog.stock("A"); s != before {
			t.Fatalf("stock %d after a refused repeat, want %d", s, before)
		}
	})
	t.Run("ship before pay", func(t *testing.T) {
		h := h.in(t)
		wantStatus(t, post(h, newOrder(h, "early-ship"), "ship"), http.StatusConflict, "ILLEGAL_STATE_TRANSITION")
	})
	t.Run("unknown order", func(t *testing.T) {
		h := h.in(t)
		wantStatus(t, post(h, "nope", "pay"), http.StatusNotFound, "NOT_FOUND")
		wantStatus(t, h.do(http.MethodGet, "/api/v1/orders/nope", ""), http.StatusNotFound, "NOT_FOUND")
	})
	t.Run("body with fields is refused", func(t *testing.T) {
		h := h.in(t)
		res := h.do(http.MethodPost, "/api/v1/orders/"+newOrder(h, "body")+"/pay", `{"force":true}`)
		wantStatus(t, res, http.StatusBadRequest, "MALFORMED_REQUEST")
	})
}

func TestCancelWhileCatalogDownReleasesLater(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	h.catalog.add("A", 100, "EUR", 10)
	res := h.place("k", orderBody("c1", "A", 4))
	wantStatus(t, res, http.StatusCreated, "")
	id := res.order(t).ID

	h.catalog.setFailing(true)
	wantStatus(t, h.do(http.MethodPost, "/api/v1/orders/"+id+"/cancel", ""), http.StatusOK, "")
	if h.countRows("pending_releases") != 1 {
		t.Fatal("the unacknowledged release was not kept for retry")
	}
	h.catalog.setFailing(false)
	h.svc.flushReleases(context.Background(), "")
	if s := h.catalog.stock("A"); s != 10 || h.countRows("pending_releases") != 0 {
		t.Fatalf("stock %d, pending %d after the retry", s, h.countRows("pending_releases"))
	}
}

func TestFailedTransitionWritesNoEvent(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	h.catalog.add("A", 100, "EUR", 10)
	res := h.place("k", orderBody("c1", "A", 1))
	id := res.order(t).ID
	if _, err := h.svc.db.W.Exec(`CREATE TRIGGER fail_release BEFORE INSERT ON pending_releases
		BEGIN SELECT RAISE(ABORT, 'injected failure'); END`); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, h.do(http.MethodPost, "/api/v1/orders/"+id+"/cancel", ""), http.StatusInternalServerError, "INTERNAL")
	if evs := h.events(); len(evs) != 1 || evs[0].Type != "order.created" {
		t.Fatalf("events %+v", evs)
	}
	if o := h.do(http.MethodGet, "/api/v1/orders/"+id, "").order(t); o.Status != StatusPlaced || o.Version != 1 {
		t.Fatalf("order changed by a rolled-back cancel: %+v", o)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	h.catalog.add("A", 300, "EUR", 5)

	res := h.place("shadow-key", orderBody("c1", "A", 2), "X-Ficus-Shadow", "1")
	wantStatus(t, res, http.StatusCreated, "")
	o := res.order(t)
	if o.Total.AmountMinor != 600 || o.Status != StatusPlaced || res.header.Get("Location") == "" {
		t.Fatalf("dry run answer %+v", o)
	}
	wantStatus(t, h.do(http.MethodGet, res.header.Get("Location"), ""), http.StatusNotFound, "NOT_FOUND")
	if _, adj := h.catalog.counts(); adj != 0 || h.catalog.stock("A") != 5 {
		t.Fatal("dry run reserved stock")
	}
	if h.countRows("orders")+h.countRows("idempotency_keys")+h.countRows("outbox_events") != 0 {
		t.Fatal("dry run wrote rows")
	}
	// Dry runs answer like the real thing, refusals included.
	wantStatus(t, h.place("s2", orderBody("c1", "A", 6), "X-Ficus-Shadow", "1"), http.StatusUnprocessableEntity, "OUT_OF_STOCK")
	wantStatus(t, h.place("s3", orderBody("c1", "A", 0), "X-Ficus-Shadow", "1"), http.StatusBadRequest, "VALIDATION_FAILED")

	// The key was not recorded: a real order with another body may use it.
	real := h.place("shadow-key", orderBody("c1", "A", 1))
	wantStatus(t, real, http.StatusCreated, "")
	id := real.order(t).ID

	for _, action := range []string{"cancel", "pay"} {
		r := h.do(http.MethodPost, "/api/v1/orders/"+id+"/"+action, "", "X-Ficus-Shadow", "1")
		wantStatus(t, r, http.StatusOK, "")
		if r.order(t).Version != 2 {
			t.Fatalf("dry %s answered %+v", action, r.order(t))
		}
	}
	if got := h.do(http.MethodGet, "/api/v1/orders/"+id, "").order(t); got.Status != StatusPlaced || got.Version != 1 {
		t.Fatalf("dry transitions changed the order: %+v", got)
	}
	if len(h.events()) != 1 || h.catalog.stock("A") != 4 {
		t.Fatal("dry transitions wrote an event or released stock")
	}
}

func TestListOrdersPagination(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	h.catalog.add("A", 100, "EUR", 1000)
	var placed []string
	for i := range 25 {
		res := h.place(fmt.Sprintf("p-%d", i), orderBody("pager", "A", 1))
		wantStatus(t, res, http.StatusCreated, "")
		placed = append(placed, res.order(t).ID)
		if i < 3 {
			wantStatus(t, h.place(fmt.Sprintf("other-%d", i), orderBody("someone-else", "A", 1)), http.StatusCreated, "")
		}
	}
	var seen []string
	cursor := ""
	sizes := []int{}
	for range 10 { // bounded: 3 pages expected
		path := "/api/v1/orders?customerId=pager&limit=10"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		res := h.do(http.MethodGet, path, "")
		wantStatus(t, res, http.StatusOK, "")
		var page orderPage
		if err := json.Unmarshal(res.body, &page); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page.Items))
		for _, o := range page.Items {
			if o.CustomerID != "pager" || len(o.Lines) != 1 {
				t.Fatalf("foreign or incomplete order in page: %+v", o)
			}
			seen = append(seen, o.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if fmt.Sprint(sizes) != "[10 10 5]" {
		t.Fatalf("page sizes %v, want [10 10 5]", sizes)
	}
	for i := range placed { // newest first, each exactly once
		if seen[i] != placed[len(placed)-1-i] {
			t.Fatalf("position %d: %s, want %s", i, seen[i], placed[len(placed)-1-i])
		}
	}

	bad := []struct{ name, query, field string }{
		{"no customer", "limit=10", "customerId"},
		{"limit zero", "customerId=pager&limit=0", "limit"},
		{"limit too big", "customerId=pager&limit=101", "limit"},
		{"limit not a number", "customerId=pager&limit=ten", "limit"},
		{"forged cursor", "customerId=pager&cursor=abc", "cursor"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			h := h.in(t)
			res := h.do(http.MethodGet, "/api/v1/orders?"+tt.query, "")
			wantStatus(t, res, http.StatusBadRequest, "VALIDATION_FAILED")
			if d := res.errBody(t).Details.(map[string]any); d["field"] != tt.field {
				t.Fatalf("details %v, want field %s", d, tt.field)
			}
		})
	}
}

func TestHostileBodies(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, func(c *Config) { c.MaxBodyBytes = 4096 })
	h.catalog.add("A", 100, "EUR", 10)
	deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
	tests := []struct {
		name        string
		body        string
		contentType string
		status      int
		code        string
		field       string
	}{
		{"unknown field", `{"customerId":"c","items":[{"sku":"A","quantity":1}],"admin":true}`, "", 400, "MALFORMED_REQUEST", "admin"},
		{"unknown nested field", `{"customerId":"c","items":[{"sku":"A","quantity":1,"price":0}]}`, "", 400, "MALFORMED_REQUEST", "price"},
		{"quantity as string", `{"customerId":"c","items":[{"sku":"A","quantity":"1"}]}`, "", 400, "MALFORMED_REQUEST", "items.quantity"},
		{"quantity fractional", `{"customerId":"c","items":[{"sku":"A","quantity":1.5}]}`, "", 400, "MALFORMED_REQUEST", "items.quantity"},
		{"quantity huge", `{"customerId":"c","items":[{"sku":"A","quantity":1e40}]}`, "", 400, "MALFORMED_REQUEST", "items.quantity"},
		{"items not array", `{"customerId":"c","items":{}}`, "", 400, "MALFORMED_REQUEST", "items"},
		{"top level array", `[]`, "", 400, "MALFORMED_REQUEST", ""},
		{"quantity zero", orderBody("c", "A", 0), "", 400, "VALIDATION_FAILED", "items[0].quantity"},
		{"quantity negative", orderBody("c", "A", -1), "", 400, "VALIDATION_FAILED", "items[0].quantity"},
		{"quantity over 1000", orderBody("c", "A", 1001), "", 400, "VALIDATION_FAILED", "items[0].quantity"},
		{"no items", `{"customerId":"c","items":[]}`, "", 400, "VALIDATION_FAILED", "items"},
		{"null items", `{"customerId":"c","items":null}`, "", 400, "VALIDATION_FAILED", "items"},
		{"no customer", `{"items":[{"sku":"A","quantity":1}]}`, "", 400, "VALIDATION_FAILED", "customerId"},
		{"duplicate sku", orderBody("c", "A", 1, "A", 2), "", 400, "VALIDATION_FAILED", "items[1].sku"},
		{"bad currency", `{"customerId":"c","currency":"eur","items":[{"sku":"A","quantity":1}]}`, "", 400, "VALIDATION_FAILED", "currency"},
		{"not JSON", `customerId=c`, "", 400, "MALFORMED_REQUEST", ""},
		{"truncated", `{"customerId":"c","items":[`, "", 400, "MALFORMED_REQUEST", ""},
		{"trailing data", orderBody("c", "A", 1) + `{}`, "", 400, "MALFORMED_REQUEST", ""},
		{"deeply nested", `{"customerId":"c","items":[{"sku":"A","quantity":1}],"x":` + deep + `}`, "", 400, "MALFORMED_REQUEST", ""},
		{"too large", `{"customerId":"` + strings.Repeat("x", 5000) + `","items":[]}`, "", 413, "PAYLOAD_TOO_LARGE", ""},
		{"wrong media type", orderBody("c", "A", 1), "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h.in(t)
			t.Parallel()
			hdr := []string{}
			if tt.contentType != "" {
				hdr = append(hdr, "Content-Type", tt.contentType)
			}
			res := h.place(fmt.Sprintf("hostile-%d", i), tt.body, hdr...)
			wantStatus(t, res, tt.status, tt.code)
			b := res.errBody(t)
			if b.Message == "" {
				t.Fatal("no human message")
			}
			if tt.field != "" {
				if d, _ := b.Details.(map[string]any); d["field"] != tt.field {
					t.Fatalf("details %v, want field %q", b.Details, tt.field)
				}
			}
		})
	}
	// Cleanup of the parent runs after its parallel subtests have finished.
	t.Cleanup(func() {
		if h.countRows("orders")+h.countRows("idempotency_keys") != 0 {
			t.Error("a refused request wrote something")
		}
	})
}

// TestBodyAboveServerLimit sends more than the server-level cap: the server
// refuses it before reading it. The client sees either the structured 413
// or, when the refusal races its upload, a reset connection; either way
// nothing is stored and the service keeps serving.
func TestBodyAboveServerLimit(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	h.catalog.add("A", 100, "EUR", 10)
	huge := `{"customerId":"` + strings.Repeat("x", 2<<20) + `","items":[{"sku":"A","quantity":1}]}`
	req, err := http.NewRequest(http.MethodPost, h.base+"/api/v1/orders", strings.NewReader(huge))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "huge")
	res, err := h.client.Do(req)
	switch {
	case err == nil:
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		r := &response{status: res.StatusCode, header: res.Header, body: b}
		h.spec.check(t, req, r)
		wantStatus(t, r, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE")
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
	default:
		t.Fatalf("unexpected error %v", err)
	}
	wantStatus(t, h.place("after-huge", orderBody("c1", "A", 1)), http.StatusCreated, "")
	if n := h.countRows("orders"); n != 1 {
		t.Fatalf("%d orders, want only the one after the huge body", n)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, func(c *Config) {
		c.RatePerSecond = 1
		c.RateBurst = 2
	})
	for range 2 {
		wantStatus(t, h.do(http.MethodGet, "/api/v1/orders/x", ""), http.StatusNotFound, "NOT_FOUND")
	}
	res := h.do(http.MethodGet, "/api/v1/orders/x", "")
	wantStatus(t, res, http.StatusTooManyRequests, "RATE_LIMITED")
	if res.header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", res.header.Get("Retry-After"))
	}
	h.clock.Advance(time.Second)
	wantStatus(t, h.do(http.MethodGet, "/api/v1/orders/x", ""), http.StatusNotFound, "NOT_FOUND")
}

func TestContractEndpoints(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	res := h.do(http.MethodGet, "/openapi.yaml", "")
	wantStatus(t, res, http.StatusOK, "")
	if !bytes.Equal(res.body, []byte(openAPI)) {
		t.Fatal("served contract differs from the embedded one")
	}
	res = h.do(http.MethodGet, "/api/v2/nothing", "", "X-Request-Id", "trace-me")
	wantStatus(t, res, http.StatusNotFound, "NOT_FOUND")
	if res.errBody(t).RequestID != "trace-me" || res.header.Get("X-Request-Id") != "trace-me" {
		t.Fatalf("request id not carried: %s", res.body)
	}
	wantStatus(t, h.do(http.MethodGet, "/api/v1/events?after=-1", ""), http.StatusBadRequest, "VALIDATION_FAILED")
}
