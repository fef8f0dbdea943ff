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
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway"
	"github.com/ficus-gw/ficus/gateway/shadow"
	"github.com/ficus-gw/ficus/internal/metricstest"
	"github.com/prometheus/client_golang/prometheus"
)

// product is the slice of the contract's Product the fake catalogs serve.
type product struct {
	SKU      string `json:"sku"`
	Name     string `json:"name"`
	Category string `json:"category"`
	Price    struct {
		AmountMinor int64  `json:"amountMinor"`
		Currency    string `json:"currency"`
	} `json:"price"`
	UpdatedAt string `json:"updatedAt"`
}

func newProduct(sku, category string, minor int64) product {
	p := product{SKU: sku, Name: "Product " + sku, Category: category, UpdatedAt: "2026-01-01T00:00:00Z"}
	p.Price.AmountMinor, p.Price.Currency = minor, "EUR"
	return p
}

// fakeCatalog is a real loopback upstream answering GET /api/v1/products/{sku}
// from products, each answer passed through edit. It counts the requests
// that carried the shadow marker.
type fakeCatalog struct {
	*httptest.Server
	marked atomic.Int64
}

func catalogServer(t *testing.T, products map[string]product, edit func(product) any) *fakeCatalog {
	t.Helper()
	c := &fakeCatalog{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(shadow.HeaderShadow) == "1" {
			c.marked.Add(1)
		}
		sku, _ := strings.CutPrefix(r.URL.Path, "/api/v1/products/")
		p, ok := products[sku]
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"code": "NOT_FOUND", "message": "no product " + sku, "requestId": r.Header.Get("X-Request-Id")})
			return
		}
		var v any = p
		if edit != nil {
			v = edit(p)
		}
		_ = json.NewEncoder(w).Encode(v)
	}))
	t.Cleanup(c.Close)
	return c
}

// deadURL is an address nobody listens on: a listener bound then closed.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// baseConfig returns a config with upstreams "legacy" (kind acl) and "new"
// (kind new) and one route "products" on /api/v1/products/* whose shadow is
// sh, defaults applied; edit may change it before validation.
func baseConfig(t *testing.T, legacyURL, newURL string, sh *config.Shadow, edit func(*config.Config)) *config.Config {
	t.Helper()
	c := &config.Config{
		Listen:    "127.0.0.1:18080",
		Admin:     config.Admin{Listen: "127.0.0.1:18090"},
		Upstreams: map[string]config.Upstream{"legacy": {URL: legacyURL, Kind: "acl"}, "new": {URL: newURL, Kind: "new"}},
		Routes: []config.Route{{
			Name: "products", Path: "/api/v1/products/*", Methods: []string{"GET", "HEAD"},
			Legacy: "legacy", New: "new", Shadow: sh,
		}},
		Shadow: config.ShadowStore{DB: filepath.Join(t.TempDir(), "shadow.db")},
	}
	if edit != nil {
		edit(c)
	}
	// A pool larger than any test's request count: exact result counts
	// must not depend on how fast the workers drain. Tests of dropping set
	// their own.
	for i := range c.Routes {
		if sh := c.Routes[i].Shadow; sh != nil && sh.Concurrency == 0 {
			sh.Concurrency = 200
		}
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// env is a gateway serving on loopback.
type env struct {
	gw     *gateway.Gateway
	reg    *prometheus.Registry
	url    string
	client *http.Client
}

func startGateway(t *testing.T, cfg *config.Config, mod func(*gateway.Options)) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts := gateway.Options{Config: cfg, Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&opts)
	}
	gw, err := gateway.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ctx, pub, adm) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-served:
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return &env{gw: gw, reg: reg, url: "http://" + pub.Addr().String(),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}}}
}

func (e *env) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := e.client.Get(e.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// settled polls the route's report until n sampled requests have a result
// (bounded), and returns it.
func (e *env) settled(t *testing.T, route string, n uint64) shadow.Report {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := e.gw.Shadow().Report(route)
		if err != nil {
			t.Fatal(err)
		}
		var total uint64
		for _, v := range r.Results {
			total += v
		}
		if total >= n {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d shadow results after 15s: %+v", total, n, r.Results)
		}
		time.Sleep(5 * time.Millisecond) // polling interval: the loop re-checks the counters
	}
}

// clock is an injected, settable clock safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}

func (c *clock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func field(r shadow.Report, f string) (shadow.FieldReport, bool) {
	for _, fr := range r.Fields {
		if fr.Field == f {
			return fr, true
		}
	}
	return shadow.FieldReport{}, false
}

// counter reads one series of reg (see metricstest.Value).
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	return metricstest.Value(t, reg, name, labels...)
}
