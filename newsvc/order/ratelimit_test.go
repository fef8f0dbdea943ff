package order

import (
	"net/http"
	"testing"
)

// TestRateLimitIsPerClientAndShadowsAreFree: one client over its rate gets
// 429 while other clients are served, and shadow copies (X-Ficus-Shadow: 1)
// never spend a client's budget.
func TestRateLimitIsPerClientAndShadowsAreFree(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, func(c *Config) {
		c.RatePerSecond = 1000
		c.RateBurst = 1000
		c.ClientRatePerSecond = 1
		c.ClientRateBurst = 2
	})
	for range 5 {
		wantStatus(t, h.do(http.MethodGet, "/api/v1/orders/x", "", "X-User-Id", "u-1", shadowHeader, "1"), http.StatusNotFound, "NOT_FOUND")
	}
	for range 2 {
		wantStatus(t, h.do(http.MethodGet, "/api/v1/orders/x", "", "X-User-Id", "u-1"), http.StatusNotFound, "NOT_FOUND")
	}
	res := h.do(http.MethodGet, "/api/v1/orders/x", "", "X-User-Id", "u-1")
	wantStatus(t, res, http.StatusTooManyRequests, "RATE_LIMITED")
	if res.header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", res.header.Get("Retry-After"))
	}
	for _, u := range []string{"u-2", "u-3", "u-4"} {
		wantStatus(t, h.do(http.MethodGet, "/api/v1/orders/x", "", "X-User-Id", u), http.StatusNotFound, "NOT_FOUND")
	}
	h.clock.Advance(1e9)
	wantStatus(t, h.do(http.MethodGet, "/api/v1/orders/x", "", "X-User-Id", "u-1"), http.StatusNotFound, "NOT_FOUND")
}
