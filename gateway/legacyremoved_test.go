package gateway

import (
	"net/http"
	"testing"

	"github.com/ficus-gw/ficus/config"
)

// TestLegacyRemovedServesOnlyNew: a route whose legacy side is retired is
// served by new whatever a decider says, and a failing new side is an
// error, never a fallback to the removed legacy.
func TestLegacyRemovedServesOnlyNew(t *testing.T) {
	t.Parallel()
	legacy := newUpstream(t, ok("legacy"))
	fresh := newUpstream(t, ok("new"))
	routes := []config.Route{
		{Name: "products", Path: "/p/*", New: "catalog", LegacyRemoved: true},
		{Name: "gone-new", Path: "/g/*", New: "down", LegacyRemoved: true},
	}
	r := start(t, testConfig(t, map[string]string{"legacy": legacy.URL, "catalog": fresh.URL, "down": deadURL(t)}, routes, nil), nil)
	for range 20 {
		resp, body := r.get(t, "/p/1")
		if resp.StatusCode != 200 || resp.Header.Get(HeaderBackend) != "new" || string(body) != "new" {
			t.Fatalf("status %d backend %q body %q", resp.StatusCode, resp.Header.Get(HeaderBackend), body)
		}
	}
	resp, _ := r.get(t, "/g/1")
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get(HeaderFallback) != "" {
		t.Fatalf("a failing new side of a retired route: status %d, fallback %q", resp.StatusCode, resp.Header.Get(HeaderFallback))
	}
	if legacy.hits.Load() != 0 {
		t.Fatalf("the removed legacy side was called %d times", legacy.hits.Load())
	}
}

// TestGoneRouteNamesItsSuccessor: a retired route answered by the gateway
// with 410 GONE and a successor-version Link; nothing reaches an upstream.
func TestGoneRouteNamesItsSuccessor(t *testing.T) {
	t.Parallel()
	legacy := newUpstream(t, ok("legacy"))
	routes := []config.Route{{Name: "v1-list", Path: "/api/v1/list", Deny: &config.Deny{Status: 410, Successor: "/api/v2/list"}}}
	r := start(t, testConfig(t, map[string]string{"legacy": legacy.URL}, routes, nil), nil)
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(m, r.url+"/api/v1/list", nil)
		resp, body := r.do(t, req)
		e := decodeErr(t, body)
		if resp.StatusCode != http.StatusGone || e.Code != "GONE" || resp.Header.Get("Link") != `</api/v2/list>; rel="successor-version"` {
			t.Fatalf("%s: status %d code %s Link %q", m, resp.StatusCode, e.Code, resp.Header.Get("Link"))
		}
	}
	if legacy.hits.Load() != 0 {
		t.Fatal("a gone route reached the legacy")
	}
}
