package order

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/contracts/api"
	"github.com/ficus-gw/ficus/internal/metricstest"
	"github.com/ficus-gw/ficus/newsvc/catalog"
)

// integrity reads GET /internal/v1/integrity (one page); it is outside the
// public contract, so the response is not checked against openapi.yaml.
func (h *harness) integrity(query string) Integrity {
	h.t.Helper()
	res, err := h.client.Get(h.base + "/internal/v1/integrity" + query)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		h.t.Fatalf("integrity: %d %s", res.StatusCode, b)
	}
	var in Integrity
	if err := json.Unmarshal(b, &in); err != nil {
		h.t.Fatal(err)
	}
	return in
}

// diedAfterReserving leaves the state a process killed mid-order leaves: a
// pending claim for key and its order id, and the stock of sku reserved
// under that order id in the Catalog.
func diedAfterReserving(t *testing.T, h *harness, key, body, sku string, qty int) string {
	t.Helper()
	ctx := context.Background()
	var req PlaceRequest
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	var rec idemRecord
	err := h.svc.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		rec, _, err = claimKey(ctx, tx, key, req.Hash(), "0b4a1c52-5a0e-4b7e-9e0f-3c1d2e3f4a5b", h.clock.Now(), h.svc.cfg.IdempotencyLease)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.catalog.adjustStock(ctx, sku, -int64(qty), reasonReserved, rec.orderID, reserveKey(rec.orderID, sku), "t"); err != nil {
		t.Fatal(err)
	}
	return rec.orderID
}

func TestSweeperReleasesAClaimWhoseProcessDied(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := startWithFake(t, func(c *Config) { c.Metrics = reg })
	h.catalog.add("A", 500, "EUR", 10)
	body := orderBody("dave", "A", 3)
	orderID := diedAfterReserving(t, h, "died-1", body, "A", 3)
	if s := h.catalog.stock("A"); s != 7 {
		t.Fatalf("stock %d, want 7 held by the dead request", s)
	}

	// Within the lease the claim is someone's work in progress.
	h.svc.sweep(context.Background())
	if in := h.integrity(""); len(in.StaleClaims) != 0 || h.countRows("idempotency_keys") != 1 {
		t.Fatalf("a claim inside its lease was touched or reported: %+v", in.StaleClaims)
	}
	h.clock.Advance(h.svc.cfg.IdempotencyLease + time.Second)
	in := h.integrity("")
	if len(in.StaleClaims) != 1 || in.StaleClaims[0].OrderID != orderID || in.StaleClaims[0].KeyFingerprint != IntentRef("died-1") {
		t.Fatalf("integrity stale claims %+v, want the dead request's", in.StaleClaims)
	}

	h.svc.sweep(context.Background())
	if s := h.catalog.stock("A"); s != 10 {
		t.Fatalf("stock %d after the sweep, want 10: the dead request's reservation is still held", s)
	}
	if n := h.countRows("idempotency_keys") + h.countRows("pending_reference_releases"); n != 0 {
		t.Fatalf("%d claims or queued releases left after the sweep", n)
	}
	if v := metricstest.Value(t, reg, MetricRepairs, "kind", repairClaimReleased); v != 1 {
		t.Fatalf("%s{kind=%s} = %v, want 1", MetricRepairs, repairClaimReleased, v)
	}
	if v := metricstest.Value(t, reg, MetricRepairs, "kind", repairReferenceReleased); v != 1 {
		t.Fatalf("%s{kind=%s} = %v, want 1", MetricRepairs, repairReferenceReleased, v)
	}
	if in := h.integrity(""); len(in.StaleClaims) != 0 {
		t.Fatalf("stale claims after the sweep: %+v", in.StaleClaims)
	}

	// The client's retry books one order with a fresh id and reserves once.
	res := h.place("died-1", body)
	wantStatus(t, res, http.StatusCreated, "")
	if o := res.order(t); o.ID == orderID {
		t.Fatalf("the retry reused the released order id %s", orderID)
	}
	if s, n := h.catalog.stock("A"), h.countRows("orders"); s != 7 || n != 1 {
		t.Fatalf("after the retry stock %d and %d orders, want 7 and 1", s, n)
	}
	// A second sweep later finds nothing to do.
	h.clock.Advance(2 * h.svc.cfg.IdempotencyLease)
	h.svc.sweep(context.Background())
	if v := metricstest.Value(t, reg, MetricRepairs, "kind", repairClaimReleased); v != 1 || h.catalog.stock("A") != 7 {
		t.Fatalf("a finished order's claim was swept: repairs %v, stock %d", v, h.catalog.stock("A"))
	}
}

func TestSweeperFinishesAClaimWhoseOrderWasBooked(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := startWithFake(t, func(c *Config) { c.Metrics = reg })
	h.catalog.add("A", 500, "EUR", 10)
	body := orderBody("erin", "A", 1)
	orderID := diedAfterReserving(t, h, "died-2", body, "A", 1)
	// The order row exists but the claim was never finished (written by an
	// older version, or by hand during an incident).
	ctx := context.Background()
	now := h.clock.Now()
	o := Order{Order: api.Order{ID: orderID, CustomerID: "erin", Status: StatusPlaced, Currency: "EUR", CreatedAt: now, UpdatedAt: now, Version: 1,
		Lines: []Line{{Sku: "A", Name: "Product A", Quantity: 1, UnitPrice: Money{AmountMinor: 500, Currency: "EUR"}}}}}
	if _, err := priceLines(o.Lines, "EUR"); err != nil {
		t.Fatal(err)
	}
	o.Total = Money{AmountMinor: 500, Currency: "EUR"}
	if err := h.svc.db.Tx(ctx, func(tx *sql.Tx) error { return insertOrder(ctx, tx, &o) }); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(h.svc.cfg.IdempotencyLease + time.Second)
	h.svc.sweep(ctx)
	if v := metricstest.Value(t, reg, MetricRepairs, "kind", repairClaimFinished); v != 1 {
		t.Fatalf("%s{kind=%s} = %v, want 1", MetricRepairs, repairClaimFinished, v)
	}
	res := h.place("died-2", body)
	wantStatus(t, res, http.StatusCreated, "")
	if got := res.order(t); got.ID != orderID {
		t.Fatalf("replay answered order %s, want the booked %s", got.ID, orderID)
	}
	if s, n := h.catalog.stock("A"), h.countRows("orders"); s != 9 || n != 1 {
		t.Fatalf("stock %d and %d orders, want 9 and 1: the booked order keeps its reservation", s, n)
	}
}

// faultProxy sits between the Order service and the real Catalog. While
// armed, it mangles the next order-reserved adjustment: "lose" forwards it
// (the Catalog applies it) and never answers; "delay" holds it without
// forwarding, to be delivered late by the test.
type faultProxy struct {
	srv     *httptest.Server
	target  *url.URL
	hold    chan struct{} // closed at cleanup: held handlers return
	mu      sync.Mutex
	mode    string
	held    *http.Request
	heldRaw []byte
	hit     chan struct{} // one value per mangled request, after it was applied (lose) or captured (delay)
}

func newFaultProxy(t *testing.T, catalogURL string) *faultProxy {
	t.Helper()
	u, err := url.Parse(catalogURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{target: u, hold: make(chan struct{}), hit: make(chan struct{}, 4)}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		mode := p.mode
		mangle := mode != "" && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/stock-adjustments") &&
			bytes.Contains(body, []byte(`"order-reserved"`))
		if mangle {
			p.mode = ""
			if mode == "delay" {
				p.held, p.heldRaw = r.Clone(context.Background()), body
			}
		}
		p.mu.Unlock()
		if !mangle {
			rp.ServeHTTP(w, r)
			return
		}
		if mode == "lose" {
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r) // applied by the Catalog; the answer is lost
		}
		p.hit <- struct{}{}
		select {
		case <-p.hold:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(p.srv.Close)
	t.Cleanup(func() { close(p.hold) }) // runs first: held handlers return before Close waits for them
	return p
}

func (p *faultProxy) arm(mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = mode
}

func waitHit(t *testing.T, p *faultProxy) {
	t.Helper()
	select {
	case <-p.hit:
	case <-time.After(10 * time.Second):
		t.Fatal("the Catalog never saw the reservation")
	}
}

// openReservations lists the real Catalog's open reservations.
func (c *realCatalog) openReservations() []catalog.Reservation {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.url+"/api/v1/stock-reservations?limit=100", nil)
	r := c.do(req)
	var page struct {
		Items []catalog.Reservation `json:"items"`
	}
	if err := json.Unmarshal(r.body, &page); err != nil || r.status != http.StatusOK {
		c.t.Fatalf("open reservations: %d %s (%v)", r.status, r.body, err)
	}
	return page.Items
}

func TestLostReservationAnswerIsReleasedByReference(t *testing.T) {
	t.Parallel()
	cat := startCatalog(t)
	cat.seed("A", 500, 10)
	cat.seed("B", 300, 10)
	proxy := newFaultProxy(t, cat.url)
	reg := prometheus.NewRegistry()
	h := startService(t, proxy.srv.URL, func(c *Config) {
		c.CatalogTimeout = 300 * time.Millisecond
		c.Metrics = reg
	})
	body := orderBody("frank", "A", 2, "B", 4)

	proxy.arm("lose") // line A is reserved, its answer never comes back
	res := h.place("lost-1", body)
	wantStatus(t, res, http.StatusServiceUnavailable, apierr.CodeDependency)
	waitHit(t, proxy)
	if a, b := cat.stock("A"), cat.stock("B"); a != 10 || b != 10 {
		t.Fatalf("stock A=%d B=%d after the failed placement, want 10 and 10: a reservation was left held", a, b)
	}
	if open := cat.openReservations(); len(open) != 0 {
		t.Fatalf("open reservations after the failed placement: %+v", open)
	}
	if n := h.countRows("pending_reference_releases") + h.countRows("idempotency_keys") + h.countRows("orders"); n != 0 {
		t.Fatalf("%d rows left behind (queued releases, claims, orders)", n)
	}
	if v := metricstest.Value(t, reg, MetricRepairs, "kind", repairReservationUnknown); v != 1 {
		t.Fatalf("%s{kind=%s} = %v, want 1", MetricRepairs, repairReservationUnknown, v)
	}

	// The client retries the key: one order, stock taken once.
	res = h.place("lost-1", body)
	wantStatus(t, res, http.StatusCreated, "")
	if a, b := cat.stock("A"), cat.stock("B"); a != 8 || b != 6 {
		t.Fatalf("stock A=%d B=%d after the retry, want 8 and 6", a, b)
	}
	if o := h.integrity("").Orders; len(o) != 1 || o[0].IntentRef != IntentRef("lost-1") {
		t.Fatalf("integrity orders %+v, want one with the key's intent ref", o)
	}
}

func TestLateReservationUnderAReleasedOrderIsRefused(t *testing.T) {
	t.Parallel()
	cat := startCatalog(t)
	cat.seed("A", 500, 10)
	proxy := newFaultProxy(t, cat.url)
	h := startService(t, proxy.srv.URL, func(c *Config) { c.CatalogTimeout = 300 * time.Millisecond })

	proxy.arm("delay") // the reservation is stuck in the network
	res := h.place("late-1", orderBody("gina", "A", 3))
	wantStatus(t, res, http.StatusServiceUnavailable, apierr.CodeDependency)
	waitHit(t, proxy)
	if n := h.countRows("pending_reference_releases"); n != 0 {
		t.Fatalf("the release by reference was not acknowledged (%d queued)", n)
	}

	// Now it lands.
	proxy.mu.Lock()
	held, raw := proxy.held, proxy.heldRaw
	proxy.mu.Unlock()
	req, _ := http.NewRequest(http.MethodPost, cat.url+held.URL.Path, bytes.NewReader(raw))
	for _, k := range []string{"Content-Type", "Idempotency-Key", apierr.RequestIDHeader} {
		req.Header.Set(k, held.Header.Get(k))
	}
	late := cat.do(req)
	if late.status != http.StatusConflict || !bytes.Contains(late.body, []byte(catalog.ReleasedReason)) {
		t.Fatalf("late reservation: %d %s, want 409 %s", late.status, late.body, catalog.ReleasedReason)
	}
	if s := cat.stock("A"); s != 10 {
		t.Fatalf("stock %d after the late reservation, want 10", s)
	}
	if open := cat.openReservations(); len(open) != 0 {
		t.Fatalf("open reservations: %+v", open)
	}
}

func TestIntegrityListsEveryOrderWithItsLineagePaged(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, nil)
	h.catalog.add("A", 100, "EUR", 100)
	for _, k := range []string{"k1", "k2"} {
		wantStatus(t, h.place(k, orderBody("ivy", "A", 1)), http.StatusCreated, "")
	}
	if err := h.svc.UpsertFromLegacy(context.Background(), LegacyOrder{LegacyOrderNo: "L-5", CustomerID: "ivy", Status: StatusPlaced,
		Currency: "EUR", ExtRef: IntentRef("k3"), Lines: []LegacyLine{{Sku: "A", Quantity: 1, UnitPriceMinor: 100}}}); err != nil {
		t.Fatal(err)
	}
	var got []OrderLineage
	cursor := ""
	for range 5 {
		in := h.integrity("?limit=2" + cursor)
		got = append(got, in.Orders...)
		if in.NextCursor == "" {
			break
		}
		cursor = "&cursor=" + in.NextCursor
	}
	if len(got) != 3 || got[0].IntentRef != IntentRef("k1") || got[1].IntentRef != IntentRef("k2") ||
		got[2].ExtRef != IntentRef("k3") || got[2].LegacyOrderNo != "L-5" || got[2].IntentRef != "" {
		t.Fatalf("integrity walk %+v", got)
	}
}
