package shadow_test

import (
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
)

// TestShadowBreakerCountsTimeouts: the shadow client's breaker opens after
// consecutive timeouts even when the shadow timeout is not shorter than
// the target's breaker window (it is built by the same upstream stack as
// the proxy's, which counts every timeout); further copies are then
// dropped without a call.
func TestShadowBreakerCountsTimeouts(t *testing.T) {
	t.Parallel()
	leg := catalogServer(t, testProducts(), nil)
	target, _, release := hangingServer(t)
	t.Cleanup(release)
	cfg := baseConfig(t, leg.URL, target, &config.Shadow{Percent: 100, Timeout: 400 * time.Millisecond}, func(c *config.Config) {
		u := c.Upstreams["new"]
		u.Timeout = 200 * time.Millisecond
		u.Breaker = config.Breaker{Window: 300 * time.Millisecond, MinRequests: 100, FailureRatio: 1, ConsecutiveFailures: 3, OpenFor: time.Hour, HalfOpenProbes: 1}
		c.Upstreams["new"] = u
	})
	e := startGateway(t, cfg, nil)
	for i := range 3 {
		if resp, _ := e.get(t, "/api/v1/products/B1"); resp.StatusCode != 200 {
			t.Fatalf("primary %d: %d", i, resp.StatusCode)
		}
		r := e.settled(t, "products", uint64(i+1))
		if r.Results["error"] != uint64(i+1) {
			t.Fatalf("after %d timed-out copies: %v", i+1, r.Results)
		}
	}
	e.get(t, "/api/v1/products/B1")
	r := e.settled(t, "products", 4)
	if r.Results["dropped"] != 1 {
		t.Fatalf("results %v: after 3 timeouts the target's shadow breaker must be open and drop the copy", r.Results)
	}
}
