package order

import (
	"net/http"
	"testing"

	"github.com/ficus-gw/ficus/internal/metricstest"
	"github.com/ficus-gw/ficus/internal/svcmetrics"
)

// TestMetricsEndpoint scrapes the service's own /metrics after an order
// and its replay: promtool-clean, with the order, repair, outbox and HTTP
// metrics an operator charts.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	h := startWithFake(t, func(c *Config) { c.Metrics = svcmetrics.NewRegistry("v-test") })
	h.catalog.add("A", 1999, "EUR", 10)
	for range 2 { // the second is an idempotent replay
		wantStatus(t, h.place("k1", orderBody("c1", "A", 1)), http.StatusCreated, "")
	}

	fams := metricstest.Scrape(t, h.base+"/metrics")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{MetricPlaced, nil, 1},
		{MetricReplays, nil, 1},
		{MetricCatalogCalls, []string{"outcome", "ok"}, 2}, // product lookup and reservation
		{MetricCatalogCalls, []string{"outcome", "rejected"}, 0},
		// every repair kind is exported from the start, at 0
		{MetricRepairs, []string{"kind", repairClaimFinished}, 0},
		{MetricRepairs, []string{"kind", repairClaimReleased}, 0},
		{MetricRepairs, []string{"kind", repairReservationUnknown}, 0},
		{MetricRepairs, []string{"kind", repairReferenceReleased}, 0},
		{svcmetrics.MetricRequests, []string{"handler", "/api/v1/orders", "method", "POST", "code", "201"}, 2},
		{svcmetrics.MetricBuildInfo, []string{"version", "v-test"}, 1},
	} {
		if got, ok := metricstest.Series(fams, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := fams[MetricBreakerOpen]; !ok {
		t.Errorf("%s missing", MetricBreakerOpen)
	}
}
