package backend

import (
	"errors"
	"fmt"

	"github.com/ficus-gw/ficus/internal/svcmetrics"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, declared once; dashboards and alerts refer to them. The
// backend also exports ficus_http_requests_total and
// ficus_http_request_duration_seconds (svcmetrics).
const (
	MetricLegacyErrors     = "ficus_acl_legacy_errors_total"
	MetricIdempotentReplay = "ficus_acl_idempotent_replays_total"
)

// metrics are nil-safe: a Backend without Config.Metrics counts nothing.
type metrics struct {
	http         *svcmetrics.HTTP
	legacyErrors *prometheus.CounterVec // operation, code
	replays      prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	h, err := svcmetrics.NewHTTP(reg)
	if err != nil {
		return nil, fmt.Errorf("backend: registering metrics: %w", err)
	}
	m := &metrics{
		http: h,
		legacyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricLegacyErrors,
			Help: "Legacy calls that failed, by operation and the contract error code answered (e.g. UPSTREAM_UNAVAILABLE, NOT_FOUND)."},
			[]string{"operation", "code"}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricIdempotentReplay,
			Help: "POST /orders answered from the reply stored under their Idempotency-Key."}),
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.legacyErrors, m.replays} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("backend: registering metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) legacyError(op, code string) {
	if m != nil {
		m.legacyErrors.WithLabelValues(op, code).Inc()
	}
}

func (m *metrics) replayed() {
	if m != nil {
		m.replays.Inc()
	}
}
