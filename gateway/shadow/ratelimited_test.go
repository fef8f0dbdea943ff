package shadow_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ficus-gw/ficus/config"
)

// TestShadow429IsNotADifference: a shadow target that refuses with 429
// (its rate limit) says nothing about whether it would have answered the
// same: the pair is skipped, never counted as a real status difference.
func TestShadow429IsNotADifference(t *testing.T) {
	t.Parallel()
	leg := catalogServer(t, testProducts(), nil)
	limited := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"code":"RATE_LIMITED","message":"slow down","requestId":"x"}`))
	}))
	t.Cleanup(limited.Close)
	cfg := baseConfig(t, leg.URL, limited.URL, &config.Shadow{Percent: 100}, nil)
	e := startGateway(t, cfg, nil)
	for range 3 {
		if resp, _ := e.get(t, "/api/v1/products/B1"); resp.StatusCode != 200 {
			t.Fatalf("primary: %d", resp.StatusCode)
		}
	}
	r := e.settled(t, "products", 3)
	if r.Results["skipped"] != 3 || r.Results["diff"] != 0 {
		t.Fatalf("results %v: a 429 on the shadow side must be skipped as not comparable", r.Results)
	}
	if f, ok := field(r, "status"); ok && f.Real {
		t.Fatalf("status reported as a real difference: %+v", f)
	}
}
