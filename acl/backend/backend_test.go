package backend_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	legacyrouter "github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/uuid"

	"github.com/ficus-gw/ficus/acl"
	"github.com/ficus-gw/ficus/acl/backend"
	"github.com/ficus-gw/ficus/acl/internal/acltest"
	"github.com/ficus-gw/ficus/newsvc/catalog"
	neworder "github.com/ficus-gw/ficus/newsvc/order"
)

// contract validates responses against the new services' OpenAPI documents:
// the ACL backend must pass the same conformance checks as newsvc.
type contract struct {
	doc    *openapi3.T
	router routers.Router
}

func loadContract(t *testing.T, path string) *contract {
	t.Helper()
	spec, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseContract(t, spec)
}

func parseContract(t *testing.T, spec []byte) *contract {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	doc.Servers = nil
	r, err := legacyrouter.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &contract{doc: doc, router: r}
}

type env struct {
	t         *testing.T
	url       string
	legacyURL string
	catalog   *contract
	orders    *contract
	public    *contract // the backend's own /openapi.yaml
	client    *http.Client
}

var (
	contractsOnce sync.Once
	catalogSpec   *contract
	orderSpec     *contract
	publicSpec    *contract
)

func newEnv(t *testing.T, opts ...func(*backend.Config)) (*env, *backend.Backend) {
	t.Helper()
	contractsOnce.Do(func() {
		catalogSpec = loadContract(t, filepath.Join("..", "..", "newsvc", "catalog", "openapi.yaml"))
		orderSpec = loadContract(t, filepath.Join("..", "..", "newsvc", "order", "openapi.yaml"))
		pub, err := backend.PublicContract(catalog.OpenAPI, []byte(neworder.OpenAPI()))
		if err != nil {
			t.Fatal(err)
		}
		publicSpec = parseContract(t, pub)
	})
	legacyURL, _ := acltest.Legacy(t, 30)
	cfg := backend.Config{
		LegacyURL: legacyURL,
		DBPath:    filepath.Join(t.TempDir(), "acl.db"),
		Client:    acl.ClientConfig{Retries: -1, BreakerFailures: 1000},
		// The documents come from the services, as cmd/ficus wires them.
		CatalogOpenAPI: catalog.OpenAPI,
		OrderOpenAPI:   []byte(neworder.OpenAPI()),
	}
	for _, o := range opts {
		o(&cfg)
	}
	b, err := backend.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := acltest.Serve(t, b.App())
	t.Cleanup(func() { _ = b.Close() })
	return &env{t: t, url: u, legacyURL: legacyURL, catalog: catalogSpec, orders: orderSpec, public: publicSpec, client: acltest.Client()}, b
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.body)
	}
}

func (r resp) code(t *testing.T) string {
	t.Helper()
	var e struct {
		Code string `json:"code"`
	}
	r.json(t, &e)
	return e.Code
}

// do sends a request and checks the answer against the contract.
func (e *env) do(method, path string, body any, hdr map[string]string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := resp{status: res.StatusCode, header: res.Header, body: raw}
	spec := e.catalog
	if strings.HasPrefix(path, "/api/v1/orders") {
		spec = e.orders
	}
	if err := spec.validate(req, r); err != nil {
		e.t.Errorf("%s %s answered %d outside the contract: %v\nbody: %.400s", method, path, r.status, err, raw)
	}
	// And against the document the backend itself serves.
	if err := e.public.validate(req, r); err != nil {
		e.t.Errorf("%s %s answered %d outside its own /openapi.yaml: %v\nbody: %.400s", method, path, r.status, err, raw)
	}
	return r
}

func (k *contract) validate(req *http.Request, r resp) error {
	vreq := req.Clone(context.Background())
	vreq.Body = http.NoBody
	if r.header.Get("X-Request-Id") == "" {
		return fmt.Errorf("no X-Request-Id header")
	}
	route, params, err := k.router.FindRoute(vreq)
	if err != nil {
		var v any
		if err := json.Unmarshal(r.body, &v); err != nil {
			return fmt.Errorf("error body is not JSON: %w", err)
		}
		return k.doc.Components.Schemas["Error"].Value.VisitJSON(v)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts},
		Status:                 r.status, Header: r.header, Options: opts,
	}
	in.SetBodyBytes(r.body)
	return openapi3filter.ValidateResponse(context.Background(), in)
}

type product struct {
	SKU      string `json:"sku"`
	Category string `json:"category"`
	Stock    int64  `json:"stock"`
	Price    struct {
		AmountMinor int64 `json:"amountMinor"`
	} `json:"price"`
}

type order struct {
	ID            string `json:"orderId"`
	CustomerID    string `json:"customerId"`
	Status        string `json:"status"`
	LegacyOrderNo string `json:"legacyOrderNo"`
	Items         []struct {
		Sku      string `json:"sku"`
		Quantity int    `json:"quantity"`
	} `json:"items"`
	Total struct {
		AmountMinor int64 `json:"amountMinor"`
	} `json:"total"`
}

// allProducts pages through GET /api/v1/products with the given query.
func (e *env) allProducts(query string) []product {
	e.t.Helper()
	var out []product
	cursor := ""
	for range 100 {
		path := "/api/v1/products?limit=7" + query
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.do("GET", path, nil, nil)
		if r.status != 200 {
			e.t.Fatalf("list: %d %s", r.status, r.body)
		}
		var page struct {
			Items      []product `json:"items"`
			NextCursor *string   `json:"nextCursor"`
		}
		r.json(e.t, &page)
		out = append(out, page.Items...)
		if page.NextCursor == nil {
			// The last page omits nextCursor (never null), like every list.
			if bytes.Contains(r.body, []byte(`"nextCursor"`)) {
				e.t.Fatalf("last page carries nextCursor: %s", r.body)
			}
			return out
		}
		cursor = *page.NextCursor
	}
	e.t.Fatal("pagination does not end")
	return nil
}

func TestProducts(t *testing.T) {
	t.Parallel()
	e, _ := newEnv(t)
	all := e.allProducts("")
	if len(all) != 30 {
		t.Fatalf("listed %d products over all pages, want the 30 seeded", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].SKU >= all[i].SKU {
			t.Fatalf("not sorted by SKU: %s before %s", all[i-1].SKU, all[i].SKU)
		}
	}
	cat := all[0].Category
	inCat := e.allProducts("&category=" + cat)
	if len(inCat) == 0 || len(inCat) >= 30 {
		t.Fatalf("category %s filter gave %d products", cat, len(inCat))
	}
	for _, p := range inCat {
		if p.Category != cat {
			t.Fatalf("category filter %s returned %s", cat, p.Category)
		}
	}

	cases := []struct {
		name, path string
		status     int
		code       string
	}{
		{"get", "/api/v1/products/" + all[0].SKU, 200, ""},
		{"v2 list", "/api/v2/products?limit=3", 200, ""},
		{"unknown article", "/api/v1/products/ART-99999", 404, "NOT_FOUND"},
		{"not an article number", "/api/v1/products/nope", 404, "NOT_FOUND"},
		{"limit out of range", "/api/v1/products?limit=0", 400, "VALIDATION_FAILED"},
		{"bad category", "/api/v1/products?category=WERKZEUG", 400, "VALIDATION_FAILED"},
		{"bad cursor", "/api/v1/products?cursor=xyz", 400, "VALIDATION_FAILED"},
		{"unknown category", "/api/v1/products?category=furniture", 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("GET", c.path, nil, nil)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if c.code != "" && r.code(t) != c.code {
				t.Fatalf("code %s, want %s", r.code(t), c.code)
			}
		})
	}
	if r := e.do("GET", "/api/v1/products/"+all[0].SKU, nil, nil); r.header.Get("ETag") == "" {
		t.Error("no ETag on a product")
	}
}

func post(key string) map[string]string {
	return map[string]string{"Idempotency-Key": key}
}

// pick returns the first product with at least n units.
func (e *env) pick(n int64, skip ...string) product {
	e.t.Helper()
outer:
	for _, p := range e.allProducts("") {
		for _, s := range skip {
			if p.SKU == s {
				continue outer
			}
		}
		if p.Stock >= n {
			return p
		}
	}
	e.t.Fatalf("no product with %d in stock", n)
	return product{}
}

func (e *env) customerOrders(cust string) []order {
	e.t.Helper()
	r := e.do("GET", "/api/v1/orders?limit=100&customerId="+cust, nil, nil)
	if r.status != 200 {
		e.t.Fatalf("list orders: %d %s", r.status, r.body)
	}
	var page struct {
		Items []order `json:"items"`
	}
	r.json(e.t, &page)
	return page.Items
}

func TestOrderLifecycle(t *testing.T) {
	t.Parallel()
	e, _ := newEnv(t)
	p := e.pick(3)
	const cust = "100007"
	before := len(e.customerOrders(cust))
	body := map[string]any{"customerId": cust, "items": []map[string]any{{"sku": p.SKU, "quantity": 2}}}

	r := e.do("POST", "/api/v1/orders", body, post("key-1"))
	if r.status != 201 {
		t.Fatalf("place: %d %s", r.status, r.body)
	}
	var o order
	r.json(t, &o)
	if o.Status != "PLACED" || o.Total.AmountMinor != 2*p.Price.AmountMinor || o.LegacyOrderNo == "" {
		t.Fatalf("placed order %+v, want PLACED, total 2×%d", o, p.Price.AmountMinor)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/orders/"+o.ID {
		t.Fatalf("Location %q", loc)
	}

	again := e.do("POST", "/api/v1/orders", body, post("key-1"))
	if again.status != 201 || !bytes.Equal(again.body, r.body) {
		t.Fatalf("replay: %d, body equal %v", again.status, bytes.Equal(again.body, r.body))
	}
	if n := len(e.customerOrders(cust)); n != before+1 {
		t.Fatalf("customer has %d orders after place + replay, want %d", n, before+1)
	}
	other := map[string]any{"customerId": cust, "items": []map[string]any{{"sku": p.SKU, "quantity": 1}}}
	if r := e.do("POST", "/api/v1/orders", other, post("key-1")); r.status != 409 || r.code(t) != "IDEMPOTENCY_KEY_REUSED" {
		t.Fatalf("same key, other body: %d %s", r.status, r.body)
	}

	if r := e.do("GET", "/api/v1/orders/"+o.ID, nil, nil); r.status != 200 {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	// Shadow writes answer as if applied and change nothing.
	if r := e.do("POST", "/api/v1/orders/"+o.ID+"/cancel", nil, map[string]string{"X-Ficus-Shadow": "1"}); r.status != 200 {
		t.Fatalf("shadow cancel: %d %s", r.status, r.body)
	} else {
		var s order
		r.json(t, &s)
		if s.Status != "CANCELLED" {
			t.Fatalf("shadow cancel answered %s", s.Status)
		}
	}
	var still order
	e.do("GET", "/api/v1/orders/"+o.ID, nil, nil).json(t, &still)
	if still.Status != "PLACED" {
		t.Fatalf("shadow cancel changed the order to %s", still.Status)
	}
	if r := e.do("POST", "/api/v1/orders", body, map[string]string{"Idempotency-Key": "shadow-1", "X-Ficus-Shadow": "1"}); r.status != 201 {
		t.Fatalf("shadow place: %d %s", r.status, r.body)
	}
	if n := len(e.customerOrders(cust)); n != before+1 {
		t.Fatalf("a shadow place created an order: %d orders, want %d", n, before+1)
	}

	r = e.do("POST", "/api/v1/orders/"+o.ID+"/cancel", nil, nil)
	var cancelled order
	r.json(t, &cancelled)
	if r.status != 200 || cancelled.Status != "CANCELLED" {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	for _, action := range []string{"cancel", "pay"} {
		if r := e.do("POST", "/api/v1/orders/"+o.ID+"/"+action, nil, nil); r.status != 409 || r.code(t) != "ILLEGAL_STATE_TRANSITION" {
			t.Fatalf("%s after cancel: %d %s", action, r.status, r.body)
		}
	}
	var restocked product
	e.do("GET", "/api/v1/products/"+p.SKU, nil, nil).json(t, &restocked)
	if restocked.Stock != p.Stock {
		t.Fatalf("stock after place and cancel is %d, want %d", restocked.Stock, p.Stock)
	}
	found := false
	for _, x := range e.customerOrders(cust) {
		found = found || x.ID == o.ID
	}
	if !found {
		t.Fatal("placed order missing from the customer's list")
	}
}

func TestOrderErrors(t *testing.T) {
	t.Parallel()
	e, _ := newEnv(t)
	p := e.pick(1)
	item := func(sku string, qty int) []map[string]any { return []map[string]any{{"sku": sku, "quantity": qty}} }
	cases := []struct {
		name   string
		body   any
		hdr    map[string]string
		status int
		code   string
	}{
		{"no key", map[string]any{"customerId": "100001", "items": item(p.SKU, 1)}, nil, 400, "IDEMPOTENCY_KEY_REQUIRED"},
		{"no items", map[string]any{"customerId": "100001", "items": item(p.SKU, 1)[:0]}, post("e1"), 400, "VALIDATION_FAILED"},
		{"quantity zero", map[string]any{"customerId": "100001", "items": item(p.SKU, 0)}, post("e2"), 400, "VALIDATION_FAILED"},
		{"unknown field", map[string]any{"customerId": "100001", "items": item(p.SKU, 1), "x": 1}, post("e3"), 400, "MALFORMED_REQUEST"},
		{"not JSON", "{", post("e4"), 400, "MALFORMED_REQUEST"},
		{"unknown sku", map[string]any{"customerId": "100001", "items": item("ART-99999", 1)}, post("e5"), 422, "INVALID_ITEM"},
		{"not an article number", map[string]any{"customerId": "100001", "items": item("nope", 1)}, post("e6"), 422, "INVALID_ITEM"},
		{"out of stock", map[string]any{"customerId": "100001", "items": item(p.SKU, 999)}, post("e7"), 422, "OUT_OF_STOCK"},
		{"unknown customer", map[string]any{"customerId": "999999", "items": item(p.SKU, 1)}, post("e8"), 422, "BUSINESS_RULE_VIOLATED"},
		{"other currency", map[string]any{"customerId": "100001", "currency": "USD", "items": item(p.SKU, 1)}, post("e9"), 422, "INVALID_ITEM"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", "/api/v1/orders", c.body, c.hdr)
			if r.status != c.status || r.code(t) != c.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, c.status, c.code)
			}
		})
	}
	t.Run("wrong media type", func(t *testing.T) {
		r := e.do("POST", "/api/v1/orders", "{}", map[string]string{"Idempotency-Key": "m1", "Content-Type": "text/plain"})
		if r.status != 415 || r.code(t) != "UNSUPPORTED_MEDIA_TYPE" {
			t.Fatalf("text/plain body: %d %s", r.status, r.body)
		}
	})
	t.Run("transition of an unknown order", func(t *testing.T) {
		r := e.do("POST", "/api/v1/orders/"+uuid.NewString()+"/pay", nil, nil)
		if r.status != 404 || r.code(t) != "NOT_FOUND" {
			t.Fatalf("unknown order: %d %s", r.status, r.body)
		}
	})
	t.Run("unknown order", func(t *testing.T) {
		for _, id := range []string{uuid.NewString(), "500001", "x"} {
			if r := e.do("GET", "/api/v1/orders/"+id, nil, nil); r.status != 404 || r.code(t) != "NOT_FOUND" {
				t.Fatalf("GET %s: %d %s", id, r.status, r.body)
			}
		}
	})
	t.Run("historic order by its shared id", func(t *testing.T) {
		id := acl.LegacyOrderID("500001")
		r := e.do("GET", "/api/v1/orders/"+id, nil, nil)
		var o order
		r.json(t, &o)
		if r.status != 200 || o.LegacyOrderNo != "500001" || o.ID != id {
			t.Fatalf("GET historic order: %d %s", r.status, r.body)
		}
	})
	t.Run("list needs a customer", func(t *testing.T) {
		if r := e.do("GET", "/api/v1/orders", nil, nil); r.status != 400 || r.code(t) != "VALIDATION_FAILED" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if got := e.customerOrders("alice"); len(got) != 0 {
			t.Fatalf("non-legacy customer has %d orders", len(got))
		}
	})
	t.Run("catalog writes answer what the gateway answers", func(t *testing.T) {
		// The gateway's products routes allow GET and HEAD only; the ACL
		// must give the same 405, so a canary cannot change the answer.
		for _, w := range []struct{ method, path string }{
			{"PUT", "/api/v1/products/" + p.SKU},
			{"POST", "/api/v1/products/" + p.SKU + "/stock-adjustments"},
			{"POST", "/api/v1/stock-reservations/ord-1/release"},
		} {
			r := e.do(w.method, w.path, map[string]any{"name": "x"}, map[string]string{"Idempotency-Key": "k1"})
			if r.status != 405 || r.code(t) != "METHOD_NOT_ALLOWED" || r.header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s answered %d (Allow %q) %s", w.method, w.path, r.status, r.header.Get("Allow"), r.body)
			}
		}
	})
}

func TestLegacyOutage(t *testing.T) {
	t.Parallel()
	e, _ := newEnv(t)
	res, err := e.client.Post(e.legacyURL+"/shop/admin/faults", "application/json",
		strings.NewReader(`{"endpoint":"*","outage":true}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	// The order contract lists 503 for POST /orders only (its GETs depend
	// on nothing); the ACL's GETs answer the same 503 when the legacy is down.
	body := map[string]any{"customerId": "100001", "items": []map[string]any{{"sku": "ART-1001", "quantity": 1}}}
	r := e.do("POST", "/api/v1/orders", body, post("outage-1"))
	if r.status != 503 || r.code(t) != "DEPENDENCY_UNAVAILABLE" || r.header.Get("Retry-After") == "" {
		t.Fatalf("legacy down: %d %s (Retry-After %q)", r.status, r.body, r.header.Get("Retry-After"))
	}
}

// TestIdempotencyOutlivesPruning shows the second layer: once the backend
// forgot a key, the legacy still remembers its ext_ref and replays the same
// order instead of booking a second one.
func TestIdempotencyOutlivesPruning(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).Unix())
	e, b := newEnv(t, func(c *backend.Config) {
		c.Now = func() time.Time { return time.Unix(now.Load(), 0) }
		c.IdempotencyTTL = time.Hour
	})
	p := e.pick(2)
	body := map[string]any{"customerId": "100011", "items": []map[string]any{{"sku": p.SKU, "quantity": 1}}}
	first := e.do("POST", "/api/v1/orders", body, post("prune-me"))
	if first.status != 201 {
		t.Fatalf("place: %d %s", first.status, first.body)
	}
	if n, err := b.PruneKeys(context.Background()); err != nil || n != 0 {
		t.Fatalf("pruned %d fresh keys (%v)", n, err)
	}
	now.Add(2 * 3600)
	if n, err := b.PruneKeys(context.Background()); err != nil || n != 1 {
		t.Fatalf("pruned %d expired keys (%v), want 1", n, err)
	}
	again := e.do("POST", "/api/v1/orders", body, post("prune-me"))
	var o1, o2 order
	first.json(t, &o1)
	again.json(t, &o2)
	if again.status != 201 || o1.ID != o2.ID || o1.LegacyOrderNo != o2.LegacyOrderNo {
		t.Fatalf("retry after pruning: %d, order %s/%s, want the first order %s/%s", again.status, o2.ID, o2.LegacyOrderNo, o1.ID, o1.LegacyOrderNo)
	}
}

// TestServesItsContract: the backend serves at /openapi.yaml the published
// contract of the paths it serves (a valid OpenAPI document that every
// answer in these tests is also checked against, see env.do), and nothing
// of the new services' own feeds or internal endpoints.
func TestServesItsContract(t *testing.T) {
	t.Parallel()
	e, _ := newEnv(t)
	r := e.do("GET", "/openapi.yaml", nil, nil)
	want, err := backend.PublicContract(catalog.OpenAPI, []byte(neworder.OpenAPI()))
	if err != nil {
		t.Fatal(err)
	}
	if r.status != 200 || r.header.Get("Content-Type") != "application/yaml" || !bytes.Equal(r.body, want) {
		t.Fatalf("/openapi.yaml: %d %q, %d bytes", r.status, r.header.Get("Content-Type"), len(r.body))
	}
	doc := parseContract(t, r.body).doc
	for _, p := range []string{"/api/v1/products", "/api/v2/products", "/api/v1/products/{sku}", "/api/v1/orders", "/api/v1/orders/{orderId}/cancel"} {
		if doc.Paths.Find(p) == nil {
			t.Errorf("served contract lacks %s", p)
		}
	}
	for _, p := range []string{"/api/v1/events", "/internal/v1/integrity", "/api/v1/stock-reservations"} {
		if doc.Paths.Find(p) != nil {
			t.Errorf("served contract has %s, which the backend does not serve", p)
		}
	}
}

// The Pact provider-state endpoint exists only when configured.
func TestProviderStatesOffByDefault(t *testing.T) {
	t.Parallel()
	e, _ := newEnv(t)
	if r := e.do("POST", "/_pact/provider-states", map[string]any{"state": "a product exists"}, nil); r.status != 404 {
		t.Fatalf("provider states without ProviderStates: %d %s", r.status, r.body)
	}
	on, _ := newEnv(t, func(c *backend.Config) { c.ProviderStates = true })
	// Not part of the contract: sent without the contract check of env.do.
	res, err := on.client.Post(on.url+"/_pact/provider-states", "application/json",
		strings.NewReader(`{"state":"a product exists","params":{"sku":"ART-1001"}}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != 204 {
		t.Fatalf("provider state on loopback: %d", res.StatusCode)
	}
}

// The backend serves the services' documents, so it refuses to start
// without them rather than serve an empty /openapi.yaml.
func TestOpenRequiresTheServicesDocuments(t *testing.T) {
	t.Parallel()
	_, err := backend.Open(context.Background(), backend.Config{LegacyURL: "http://127.0.0.1:1", DBPath: filepath.Join(t.TempDir(), "acl.db")}, nil)
	if err == nil || !strings.Contains(err.Error(), "CatalogOpenAPI and OrderOpenAPI are required") {
		t.Fatalf("Open without documents: %v", err)
	}
}
