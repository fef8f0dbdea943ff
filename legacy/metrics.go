package legacy

import (
	"fmt"
	"time"

	"github.com/ficus-gw/ficus/internal/svcmetrics"
	"github.com/prometheus/client_golang/prometheus"
)

// MetricFaultsInjected counts the faults the shop injected, by kind
// (outage, latency, error): a legacy outage in the dashboards that was
// asked for, not suffered. The shop also exports ficus_http_requests_total
// and ficus_http_request_duration_seconds with handler = servlet path.
const MetricFaultsInjected = "ficus_legacy_faults_injected_total"

// Kinds of injected fault, the label values of MetricFaultsInjected.
const (
	faultOutage  = "outage"
	faultLatency = "latency"
	faultError   = "error"
)

// metrics are nil-safe: a Shop without Config.Metrics counts nothing.
type metrics struct {
	http   *svcmetrics.HTTP
	faults *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	h, err := svcmetrics.NewHTTP(reg)
	if err != nil {
		return nil, fmt.Errorf("legacy: registering metrics: %w", err)
	}
	m := &metrics{http: h, faults: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricFaultsInjected,
		Help: "Faults injected through /shop/admin/faults, by kind: outage, latency, error."}, []string{"kind"})}
	for _, k := range []string{faultOutage, faultLatency, faultError} {
		m.faults.WithLabelValues(k) // every kind from the start, at 0
	}
	if err := reg.Register(m.faults); err != nil {
		return nil, fmt.Errorf("legacy: registering metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) fault(kind string) {
	if m != nil {
		m.faults.WithLabelValues(kind).Inc()
	}
}

func (m *metrics) request(handler, method string, code int, d time.Duration) {
	if m != nil {
		m.http.Observe(handler, method, code, d)
	}
}
