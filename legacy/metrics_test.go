package legacy

import (
	"net/http/httptest"
	"testing"

	"github.com/ficus-gw/ficus/internal/metricstest"
	"github.com/ficus-gw/ficus/internal/svcmetrics"
)

// TestMetrics serves the shop's registry the way `ficus legacy` does (on a
// listener of its own) and scrapes it after traffic and an injected
// outage; the shop's own port has no /metrics.
func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := svcmetrics.NewRegistry("v-test")
	s := openShop(t, Config{Metrics: reg})
	srv := serve(t, s)
	msrv := httptest.NewServer(svcmetrics.Handler(reg))
	t.Cleanup(msrv.Close)

	if r := get(t, srv, "/shop/catalog.do", nil); r.status != 200 {
		t.Fatalf("catalog: %d", r.status)
	}
	if r := get(t, srv, "/metrics", nil); r.status != 404 {
		t.Fatalf("GET /metrics on the shop's port: %d, want 404 (a gateway's catch-all route forwards there)", r.status)
	}
	if r := get(t, srv, "/shop/no-such-1.do", nil); r.status != 404 {
		t.Fatalf("unknown page: %d", r.status)
	}
	if code, _ := setFault(t, srv, `{"endpoint":"/shop/catalog.do","outage":true}`); code != 200 {
		t.Fatalf("setting the fault: %d", code)
	}
	if r := get(t, srv, "/shop/catalog.do", nil); r.status != 503 {
		t.Fatalf("catalog during the outage: %d", r.status)
	}

	fams := metricstest.Scrape(t, msrv.URL)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{svcmetrics.MetricRequests, []string{"handler", "/shop/catalog.do", "method", "GET", "code", "200"}, 1},
		{svcmetrics.MetricRequests, []string{"handler", "/shop/catalog.do", "method", "GET", "code", "503"}, 1},
		{svcmetrics.MetricRequests, []string{"handler", svcmetrics.Unmatched, "method", "GET", "code", "404"}, 2},
		{svcmetrics.MetricRequests, []string{"handler", faultsPath, "method", "POST", "code", "200"}, 1},
		{MetricFaultsInjected, []string{"kind", faultOutage}, 1},
		{MetricFaultsInjected, []string{"kind", faultError}, 0},
		{svcmetrics.MetricBuildInfo, []string{"version", "v-test"}, 1},
	} {
		if got, ok := metricstest.Series(fams, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
}
