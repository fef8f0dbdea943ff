package shadow_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/acl"
	"github.com/ficus-gw/ficus/acl/shadowmap"
	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway"
	"github.com/ficus-gw/ficus/gateway/shadow"
)

// artikelXML is the legacy's productDetail.do answer for ART-1001 (the
// acl golden file artikel_full.xml).
const artikelXML = `<?xml version="1.0" encoding="UTF-8"?>
<artikel art_nr="ART-1001" chg_seq="201">
 <bez>Becker Schleifmaschine Plus</bez>
 <kat>WERKZEUG</kat>
 <ean>4003707402760</ean>
 <beschr>Der Artikel Becker Schleifmaschine Plus ist ein bewährter Klassiker.</beschr>
 <preis>1.168,95</preis>
 <waehrung>EUR</waehrung>
 <bestand>57</bestand>
 <lieferbar>J</lieferbar>
 <geaendert>14.03.2025 11:30</geaendert>
</artikel>`

// contractJSON is the same article as the catalog serves it, except for
// the price the new side rounds.
const contractJSON = `{"sku":"ART-1001","name":"Becker Schleifmaschine Plus",
"description":"Der Artikel Becker Schleifmaschine Plus ist ein bewährter Klassiker.","category":"tools",
"price":{"amountMinor":116900,"currency":"EUR"},"stock":57,"available":true,"updatedAt":"2025-03-14T10:30:00Z","version":201}`

func TestLegacyProductDetailIsComparedWithTheCatalog(t *testing.T) {
	t.Parallel()
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml; charset=UTF-8")
		if r.URL.Path != "/shop/productDetail.do" || r.URL.Query().Get("art_nr") != "ART-1001" {
			_, _ = w.Write([]byte(`<error code="E001">Artikel unbekannt</error>`)) // the legacy's 200 business error
			return
		}
		_, _ = w.Write([]byte(artikelXML))
	}))
	t.Cleanup(legacy.Close)
	var paths []string
	seen := make(chan string, 10)
	catalog := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.URL.RequestURI()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/api/v1/products/ART-1001" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"code":"NOT_FOUND","message":"no such product","requestId":"x"}`))
			return
		}
		_, _ = w.Write([]byte(contractJSON))
	}))
	t.Cleanup(catalog.Close)

	cfg := baseConfig(t, legacy.URL, catalog.URL, nil, func(c *config.Config) {
		c.Upstreams["shop"] = config.Upstream{URL: legacy.URL, Kind: "legacy"}
		c.Routes = []config.Route{{
			Name: "product-detail", Path: "/shop/productDetail.do", Methods: []string{"GET"}, Legacy: "shop",
			Shadow: &config.Shadow{Percent: 100, Target: "new"},
		}}
	})
	tr, err := acl.NewTranslator(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := startGateway(t, cfg, func(o *gateway.Options) {
		o.ShadowMappings = map[string]shadow.Mapping{"product-detail": shadowmap.ProductDetail{Translator: tr}}
	})
	for _, q := range []string{"ART-1001", "ART-9999"} {
		if resp, _ := e.get(t, "/shop/productDetail.do?art_nr="+q); resp.StatusCode != http.StatusOK {
			t.Fatalf("primary %s: %d", q, resp.StatusCode)
		}
	}
	r := e.settled(t, "product-detail", 2)
	for range 2 {
		paths = append(paths, <-seen)
	}
	if paths[0] != "/api/v1/products/ART-1001" && paths[1] != "/api/v1/products/ART-1001" {
		t.Errorf("catalog saw %q, want the mapped /api/v1/products/ART-1001", paths)
	}
	// The unknown article is a 200 <error E001> on the legacy and a 404
	// NOT_FOUND on the catalog: the same answer in the contract's terms.
	if r.Results["match"] != 1 || r.Results["diff"] != 1 {
		t.Fatalf("results %v, want one match (unknown article) and one diff (price)", r.Results)
	}
	if len(r.Fields) != 1 || r.Fields[0].Field != "/price/amountMinor" {
		t.Errorf("fields %+v, want only /price/amountMinor", r.Fields)
	}
	if len(r.Samples) != 1 || r.Samples[0].Differences[0].Primary != "116895" || r.Samples[0].Differences[0].Shadow != "116900" {
		t.Errorf("samples %+v, want 116895 (legacy 1.168,95) vs 116900", r.Samples)
	}
}

func TestLegacyKindWithoutMappingIsSkipped(t *testing.T) {
	t.Parallel()
	leg := catalogServer(t, testProducts(), nil)
	nw := catalogServer(t, testProducts(), nil)
	cfg := baseConfig(t, leg.URL, nw.URL, &config.Shadow{Percent: 100}, func(c *config.Config) {
		c.Upstreams["legacy"] = config.Upstream{URL: leg.URL, Kind: "legacy"}
	})
	e := startGateway(t, cfg, nil)
	e.get(t, "/api/v1/products/B1")
	r := e.settled(t, "products", 1)
	if r.Results["skipped"] != 1 || nw.marked.Load() != 0 {
		t.Errorf("results %v, target saw %d: want skipped before sending", r.Results, nw.marked.Load())
	}
}

func TestOversizeExchangesAreSkipped(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 2<<20)
	leg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/v1/products/BIG" {
			_, _ = w.Write([]byte(`{"blob":"` + big + `"}`)) // over the stream threshold: streamed to the client
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(leg.Close)
	nw := catalogServer(t, testProducts(), nil)
	cfg := baseConfig(t, leg.URL, nw.URL, &config.Shadow{Percent: 100, Methods: []string{"GET", "POST"}, Writes: true, MaxBodyBytes: 1024}, func(c *config.Config) {
		c.Routes[0].Methods = nil
	})
	e := startGateway(t, cfg, nil)
	if resp, body := e.get(t, "/api/v1/products/BIG"); resp.StatusCode != 200 || len(body) != len(big)+11 {
		t.Fatalf("big primary answer: %d, %d bytes", resp.StatusCode, len(body))
	}
	resp, err := e.client.Post(e.url+"/api/v1/products/B1", "application/json", strings.NewReader(strings.Repeat(" ", 2048)+"{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r := e.settled(t, "products", 2)
	if r.Results["skipped"] != 2 {
		t.Errorf("results %v, want both skipped", r.Results)
	}
	if n := nw.marked.Load(); n != 0 {
		t.Errorf("the target saw %d shadow requests, want none: an oversize request is not mirrored", n)
	}
}

func TestWritesAreNeverMirroredToTheMonolith(t *testing.T) {
	t.Parallel()
	primary := catalogServer(t, testProducts(), nil)
	monolith := catalogServer(t, testProducts(), nil)
	cfg := baseConfig(t, primary.URL, monolith.URL, nil, func(c *config.Config) {
		c.Upstreams["shop"] = config.Upstream{URL: monolith.URL, Kind: "legacy"}
		c.Routes = []config.Route{{
			Name: "products", Path: "/api/v1/products/*", Legacy: "legacy",
			Shadow: &config.Shadow{Percent: 100, Target: "shop", Methods: []string{"GET", "PUT"}, Writes: true},
		}}
	})
	tr, err := acl.NewTranslator(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := startGateway(t, cfg, func(o *gateway.Options) {
		o.ShadowMappings = map[string]shadow.Mapping{"products": shadowmap.ProductDetail{Translator: tr}}
	})
	req, err := http.NewRequest(http.MethodPut, e.url+"/api/v1/products/B1", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r := e.settled(t, "products", 1)
	if r.Results["skipped"] != 1 || monolith.marked.Load() != 0 {
		t.Errorf("results %v, monolith saw %d shadow requests: a write must not reach a legacy-kind target", r.Results, monolith.marked.Load())
	}
}
