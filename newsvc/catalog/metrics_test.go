package catalog_test

import (
	"net/http"
	"testing"

	"github.com/ficus-gw/ficus/internal/metricstest"
	"github.com/ficus-gw/ficus/internal/svcmetrics"
	"github.com/ficus-gw/ficus/newsvc/catalog"
)

// TestMetricsEndpoint scrapes the service's own /metrics after some
// traffic: the exposition is promtool-clean and shows what happened.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *catalog.Config) { c.Metrics = svcmetrics.NewRegistry("v-test") })
	e.put("ART-1", product("Mug", "kitchen", 800, 10))
	key := map[string]string{"Idempotency-Key": "ord-1-ART-1"}
	for range 2 { // the second is a replay
		if r := e.do(http.MethodPost, adjustPath("ART-1"), map[string]any{"delta": -1, "reason": "order-reserved", "reference": "ord-1"}, key); r.status != http.StatusCreated {
			t.Fatalf("adjustment: %s", r)
		}
	}
	if r := e.do(http.MethodGet, "/api/v1/products/NOPE", nil, nil); r.status != http.StatusNotFound {
		t.Fatalf("unknown product: %s", r)
	}

	fams := metricstest.Scrape(t, e.base+"/metrics")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{catalog.MetricStockAdjustments, []string{"outcome", "applied"}, 1},
		{catalog.MetricStockAdjustments, []string{"outcome", "replayed"}, 1},
		{svcmetrics.MetricRequests, []string{"handler", "/api/v1/products/:sku/stock-adjustments", "method", "POST", "code", "201"}, 2},
		{svcmetrics.MetricRequests, []string{"handler", "/api/v1/products/:sku", "method", "GET", "code", "404"}, 1},
		{svcmetrics.MetricBuildInfo, []string{"version", "v-test"}, 1},
	} {
		if got, ok := metricstest.Series(fams, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := fams["process_start_time_seconds"]; !ok {
		t.Error("no process metrics")
	}
}

// TestNoMetricsWithoutRegistry: a catalog without a registry has no
// /metrics route.
func TestNoMetricsWithoutRegistry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	if r := e.do(http.MethodGet, "/metrics", nil, nil); r.status != http.StatusNotFound {
		t.Fatalf("GET /metrics without a registry: %s", r)
	}
}
