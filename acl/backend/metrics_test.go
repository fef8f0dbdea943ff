package backend_test

import (
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/acl/backend"
	"github.com/ficus-gw/ficus/internal/metricstest"
	"github.com/ficus-gw/ficus/internal/svcmetrics"
)

// TestMetricsEndpoint scrapes the backend's own /metrics after a replayed
// order and a legacy outage: promtool-clean, counting what an operator
// must see.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	e, _ := newEnv(t, func(c *backend.Config) { c.Metrics = svcmetrics.NewRegistry("v-test") })
	p := e.pick(1)
	body := map[string]any{"customerId": "100001", "items": []map[string]any{{"sku": p.SKU, "quantity": 1}}}
	for range 2 { // the second is answered from the stored reply
		if r := e.do("POST", "/api/v1/orders", body, post("metrics-1")); r.status != 201 {
			t.Fatalf("place: %d %s", r.status, r.body)
		}
	}
	res, err := e.client.Post(e.legacyURL+"/shop/admin/faults", "application/json",
		strings.NewReader(`{"endpoint":"*","outage":true}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	// (the contract lists 503 for POST /orders only)
	if r := e.do("POST", "/api/v1/orders", body, post("metrics-2")); r.status != 503 {
		t.Fatalf("legacy down: %d %s", r.status, r.body)
	}

	fams := metricstest.Scrape(t, e.url+"/metrics")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{backend.MetricIdempotentReplay, nil, 1},
		{backend.MetricLegacyErrors, []string{"operation", "place-order", "code", "DEPENDENCY_UNAVAILABLE"}, 1},
		{svcmetrics.MetricRequests, []string{"handler", "/api/v1/orders", "method", "POST", "code", "201"}, 2},
		{svcmetrics.MetricRequests, []string{"handler", "/api/v1/orders", "method", "POST", "code", "503"}, 1},
		{svcmetrics.MetricBuildInfo, []string{"version", "v-test"}, 1},
	} {
		if got, ok := metricstest.Series(fams, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
}
