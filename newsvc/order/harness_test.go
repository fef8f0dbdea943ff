package order

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	legacyrouter "github.com/getkin/kin-openapi/routers/legacy"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/newsvc/outbox"
)

func TestMain(m *testing.M) {
	// kin-openapi's decoder registry is a plain map: register before any
	// test runs so that parallel validations only read it.
	openapi3filter.RegisterBodyDecoder("application/yaml", openapi3filter.YamlBodyDecoder)
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild()) // this process is an order service a test will kill
	}
	os.Exit(m.Run())
}

// fakeCatalog implements exactly the Catalog contract the Order service
// relies on (GET product, POST stock-adjustments with Idempotency-Key
// replay), on a real loopback HTTP server.
type fakeCatalog struct {
	srv *httptest.Server

	mu          sync.Mutex
	products    map[string]*fakeProduct
	replies     map[string]fakeReply        // Idempotency-Key -> first reply
	requests    int                         // every request received
	adjustments int                         // stock adjustments applied (not replays)
	failing     bool                        // answer 500 to everything
	held        map[string]map[string]int64 // reference -> sku -> units reserved and not released
	released    map[string]bool             // references released by reference
}

type fakeProduct struct {
	name     string
	price    int64
	currency string
	stock    int64
}

type fakeReply struct {
	status int
	body   []byte
}

func newFakeCatalog(t testing.TB) *fakeCatalog {
	t.Helper()
	f := &fakeCatalog{products: map[string]*fakeProduct{}, replies: map[string]fakeReply{},
		held: map[string]map[string]int64{}, released: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCatalog) add(sku string, price int64, currency string, stock int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.products[sku] = &fakeProduct{name: "Product " + sku, price: price, currency: currency, stock: stock}
}

func (f *fakeCatalog) stock(sku string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.products[sku].stock
}

func (f *fakeCatalog) setFailing(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = v
}

func (f *fakeCatalog) counts() (requests, adjustments int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests, f.adjustments
}

func (f *fakeCatalog) writeErr(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apierr.Body{Code: code, Message: code, RequestID: "fake"})
}

func (f *fakeCatalog) productJSON(sku string, p *fakeProduct) []byte {
	b, _ := json.Marshal(map[string]any{
		"sku": sku, "name": p.name, "description": "", "category": "test",
		"price": map[string]any{"amountMinor": p.price, "currency": p.currency},
		"stock": p.stock, "available": p.stock > 0, "updatedAt": "2026-01-01T00:00:00Z", "version": 1,
	})
	return b
}

func (f *fakeCatalog) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if f.failing {
		f.writeErr(w, http.StatusInternalServerError, apierr.CodeInternal)
		return
	}
	if ref, ok := strings.CutPrefix(r.URL.Path, "/api/v1/stock-reservations/"); ok && r.Method == http.MethodPost {
		ref, ok = strings.CutSuffix(ref, "/release")
		if !ok {
			f.writeErr(w, http.StatusNotFound, apierr.CodeNotFound)
			return
		}
		if !f.released[ref] {
			f.released[ref] = true
			for sku, n := range f.held[ref] {
				f.products[sku].stock += n
				f.adjustments++
			}
			delete(f.held, ref)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"reference":%q,"released":[],"releasedAt":"2026-01-01T00:00:00Z"}`, ref)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/products/")
	if !ok {
		f.writeErr(w, http.StatusNotFound, apierr.CodeNotFound)
		return
	}
	sku, action, _ := strings.Cut(rest, "/")
	p := f.products[sku]
	switch {
	case r.Method == http.MethodGet && action == "":
		if p == nil {
			f.writeErr(w, http.StatusNotFound, apierr.CodeNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(f.productJSON(sku, p))
	case r.Method == http.MethodPost && action == "stock-adjustments":
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			f.writeErr(w, http.StatusBadRequest, apierr.CodeIdempotencyMissing)
			return
		}
		if prev, ok := f.replies[key]; ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(prev.status)
			_, _ = w.Write(prev.body)
			return
		}
		var adj struct {
			Delta     int64  `json:"delta"`
			Reason    string `json:"reason"`
			Reference string `json:"reference"`
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		err := dec.Decode(&adj)
		if validReason := adj.Reason == "order-reserved" || adj.Reason == "order-released"; err != nil ||
			adj.Delta == 0 || adj.Reference == "" || !validReason {
			f.writeErr(w, http.StatusBadRequest, apierr.CodeValidation)
			return
		}
		if p == nil {
			f.writeErr(w, http.StatusNotFound, apierr.CodeNotFound)
			return
		}
		if adj.Reason == "order-reserved" && f.released[adj.Reference] {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			_, _ = fmt.Fprintf(w, `{"code":"CONFLICT","message":"released","requestId":"fake","details":{"reason":"reservation-reference-released"}}`)
			return
		}
		if p.stock+adj.Delta < 0 {
			f.writeErr(w, http.StatusUnprocessableEntity, apierr.CodeOutOfStock)
			return
		}
		p.stock += adj.Delta
		f.adjustments++
		if f.held[adj.Reference] == nil {
			f.held[adj.Reference] = map[string]int64{}
		}
		if adj.Reason == "order-reserved" {
			f.held[adj.Reference][sku] -= adj.Delta
		} else {
			f.held[adj.Reference][sku] = max(0, f.held[adj.Reference][sku]-adj.Delta)
		}
		body := f.productJSON(sku, p)
		f.replies[key] = fakeReply{status: http.StatusCreated, body: body}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(body)
	default:
		f.writeErr(w, http.StatusMethodNotAllowed, apierr.CodeMethodNotAllowed)
	}
}

// testClock is an injected clock that only moves when told to.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is a Service listening on loopback plus a contract-checking client.
type harness struct {
	t       testing.TB
	svc     *Service
	base    string
	client  *http.Client
	spec    *contract
	catalog *fakeCatalog // nil with a real catalog
	clock   *testClock
}

// startService opens a Service on a fresh database in t.TempDir() and serves
// it on 127.0.0.1:0. tweak may adjust the config first.
func startService(t testing.TB, catalogURL string, tweak func(*Config)) *harness {
	t.Helper()
	clock := newTestClock()
	cfg := Config{
		DBPath:         filepath.Join(t.TempDir(), "orders.db"),
		CatalogURL:     catalogURL,
		CatalogTimeout: 5 * time.Second,
		Now:            clock.Now,
		RatePerSecond:  -1,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	svc, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- svc.App().Listener(ln) }()
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	t.Cleanup(func() {
		client.CloseIdleConnections() // else shutdown waits for keep-alive connections to time out
		if err := svc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Errorf("server did not stop")
		}
	})
	return &harness{
		t:      t,
		svc:    svc,
		base:   "http://" + ln.Addr().String(),
		client: client,
		spec:   loadContract(t),
		clock:  clock,
	}
}

func startWithFake(t testing.TB, tweak func(*Config)) *harness {
	t.Helper()
	f := newFakeCatalog(t)
	h := startService(t, f.srv.URL, tweak)
	h.catalog = f
	return h
}

// in returns a copy of h that reports to t, for use inside subtests.
func (h *harness) in(t testing.TB) *harness {
	c := *h
	c.t = t
	return &c
}

// contract validates responses against openapi.yaml.
type contract struct {
	doc    *openapi3.T
	router routers.Router
}

func loadContract(t testing.TB) *contract {
	t.Helper()
	return loadContractFrom(t, []byte(openAPI))
}

func loadContractFrom(t testing.TB, spec []byte) *contract {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		t.Fatalf("loading openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is invalid: %v", err)
	}
	doc.Servers = nil // match any host: the test server has a random port
	router, err := legacyrouter.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &contract{doc: doc, router: router}
}

// check fails the test when the response does not conform to the contract.
// A path the contract does not know must still answer a structured Error.
func (k *contract) check(t testing.TB, req *http.Request, res *response) {
	t.Helper()
	route, params, err := k.router.FindRoute(req)
	if err != nil {
		var v any
		if err := json.Unmarshal(res.body, &v); err != nil {
			t.Errorf("%s %s: %d body is not JSON: %q", req.Method, req.URL, res.status, res.body)
			return
		}
		if err := k.doc.Components.Schemas["Error"].Value.VisitJSON(v); err != nil {
			t.Errorf("%s %s: %d body is not an Error: %v", req.Method, req.URL, res.status, err)
		}
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.status,
		Header: res.header, Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	out.SetBodyBytes(res.body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s %s: response violates openapi.yaml: %v\nbody: %s", req.Method, req.URL, err, res.body)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// errBody decodes an error response.
func (r *response) errBody(t testing.TB) apierr.Body {
	t.Helper()
	var b apierr.Body
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return b
}

func (r *response) order(t testing.TB) Order {
	t.Helper()
	var o Order
	if err := json.Unmarshal(r.body, &o); err != nil {
		t.Fatalf("order body %q: %v", r.body, err)
	}
	return o
}

// do sends one request; headers are name/value pairs. Every response is
// checked against the contract.
func (h *harness) do(method, path, body string, headers ...string) *response {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	r := &response{status: res.StatusCode, header: res.Header, body: b}
	h.spec.check(h.t, req, r)
	return r
}

// place posts an order with the given idempotency key.
func (h *harness) place(key, body string, headers ...string) *response {
	h.t.Helper()
	return h.do(http.MethodPost, "/api/v1/orders", body, append([]string{"Idempotency-Key", key}, headers...)...)
}

func (h *harness) events() []outbox.Stored {
	h.t.Helper()
	res := h.do(http.MethodGet, "/api/v1/events?after=0&limit=1000", "")
	if res.status != http.StatusOK {
		h.t.Fatalf("events: %d %s", res.status, res.body)
	}
	var page outbox.Page
	if err := json.Unmarshal(res.body, &page); err != nil {
		h.t.Fatal(err)
	}
	return page.Events
}

func (h *harness) countRows(table string) int {
	h.t.Helper()
	var n int
	if err := h.svc.db.R.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

func wantStatus(t testing.TB, r *response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if code != "" {
		if got := r.errBody(t).Code; got != code {
			t.Fatalf("code %s, want %s; body %s", got, code, r.body)
		}
	}
}

func orderBody(customer string, items ...any) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"customerId":%q,"items":[`, customer)
	for i := 0; i+1 < len(items); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":%q,"quantity":%s}`, items[i], strconv.Itoa(items[i+1].(int)))
	}
	b.WriteString("]}")
	return b.String()
}
