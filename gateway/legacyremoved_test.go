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
