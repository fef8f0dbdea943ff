package catalog_test

import (
	"net/http"
	"testing"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/newsvc/catalog"
)

// TestRateLimitIsPerClientAndShadowsAreFree: one client over its rate gets
// 429 while other clients are served; shadow copies (X-Ficus-Shadow: 1)
// never spend a client's budget.
func TestRateLimitIsPerClientAndShadowsAreFree(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *catalog.Config) { c.RateLimit = 1000; c.ClientRateLimit = 2; c.ClientRateBurst = 2 })
	get := func(hdr map[string]string) int {
		return e.do(http.MethodGet, "/api/v2/products", nil, hdr).status
	}
	// Shadow copies for user u-1 first: they must leave u-1's budget whole.
	for i := range 5 {
		if st := get(map[string]string{"X-User-Id": "u-1", catalog.ShadowHeader: "1"}); st != http.StatusOK {
			t.Fatalf("shadow copy %d: %d", i, st)
		}
	}
	for i := range 2 {
		if st := get(map[string]string{"X-User-Id": "u-1"}); st != http.StatusOK {
			t.Fatalf("u-1 request %d within its burst: %d (shadow copies spent it?)", i, st)
		}
	}
	r := e.do(http.MethodGet, "/api/v2/products", nil, map[string]string{"X-User-Id": "u-1"})
	if r.status != http.StatusTooManyRequests || r.errBody(t).Code != apierr.CodeRateLimited || r.header.Get("Retry-After") == "" {
		t.Fatalf("u-1 over its rate: %s", r)
	}
	for _, u := range []string{"u-2", "u-3", "u-4"} {
		if st := get(map[string]string{"X-User-Id": u}); st != http.StatusOK {
			t.Fatalf("%s refused because u-1 flooded: %d", u, st)
		}
	}
	if st := get(map[string]string{"X-Api-Key": "partner-1"}); st != http.StatusOK {
		t.Fatalf("an API key is its own client: %d", st)
	}
}
