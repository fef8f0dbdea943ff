package gateway

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/internal/metricstest"
)

// TestFleetMetrics: byte counts per route and side, open connections of the
// public listener, reload results, and ficus_breaker_state keyed by
// upstream, read from the admin /metrics an operator scrapes (which must be
// promtool-clean).
func TestFleetMetrics(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("x", 1000)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write([]byte(body))
	})
	r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, nil, nil), nil)
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, r.url+"/shop/placeOrder.do", strings.NewReader(strings.Repeat("a", 300)))
		if resp, got := r.do(t, req); resp.StatusCode != 200 || len(got) != 1000 {
			t.Fatalf("POST: %d, %d bytes", resp.StatusCode, len(got))
		}
	}
	r.gw.RecordConfigReload(nil)
	r.gw.RecordConfigReload(errors.New("routes[0].path: required"))
	r.gw.RecordConfigReload(errors.New("again"))

	fams := metricstest.Scrape(t, r.admin+"/metrics")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{MetricRequestBytes, []string{"route", "default", LabelBackend, "legacy"}, 600},
		{MetricResponseBytes, []string{"route", "default", LabelBackend, "legacy"}, 2000},
		{MetricRequestBytes, []string{"route", "default", LabelBackend, "new"}, 0},
		{MetricConfigReloads, []string{"result", ReloadApplied}, 1},
		{MetricConfigReloads, []string{"result", ReloadRejected}, 2},
		{MetricBreakerState, []string{LabelUpstream, "legacy"}, 0},
	} {
		if got, ok := metricstest.Series(fams, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for _, m := range fams[MetricBreakerState].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == LabelBackend {
				t.Errorf("%s still has a %s label: %v", MetricBreakerState, LabelBackend, m)
			}
		}
	}
	// The keep-alive connection of the client is open; once the client
	// closes it, the gauge falls back to 0.
	if got, _ := metricstest.Series(fams, MetricOpenConnections); got < 1 {
		t.Errorf("%s = %v with a keep-alive connection open", MetricOpenConnections, got)
	}
	r.clients.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for r.counter(t, MetricOpenConnections) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after the client closed its connections", MetricOpenConnections, r.counter(t, MetricOpenConnections))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
