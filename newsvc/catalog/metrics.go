package catalog

import (
	"errors"
	"fmt"

	"github.com/ficus-gw/ficus/internal/svcmetrics"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, declared once; dashboards and alerts refer to them. The
// outbox adds ficus_outbox_* with service="catalog".
const (
	MetricStockAdjustments = "ficus_catalog_stock_adjustments_total"
	MetricRateLimited      = "ficus_catalog_rate_limited_total"
)

// Outcomes of a stock adjustment, the label values of MetricStockAdjustments.
const (
	outcomeApplied    = "applied"
	outcomeReplayed   = "replayed"
	outcomeOutOfStock = "out_of_stock"
	outcomeKeyReused  = "key_reused"
	outcomeShadow     = "shadow"
	// outcomeReferenceReleased: a reservation refused because its
	// reference was released (it arrived after its holder gave up).
	outcomeReferenceReleased = "reference_released"
)

// metrics are nil-safe so that a Service without a registry counts nothing.
type metrics struct {
	http        *svcmetrics.HTTP
	adjustments *prometheus.CounterVec
	rateLimited prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	h, err := svcmetrics.NewHTTP(reg)
	if err != nil {
		return nil, fmt.Errorf("catalog: registering metrics: %w", err)
	}
	m := &metrics{
		http: h,
		adjustments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricStockAdjustments,
			Help: "Stock adjustment requests by outcome: applied, replayed (same Idempotency-Key), out_of_stock, key_reused, shadow, reference_released (a late reservation refused)."},
			[]string{"outcome"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricRateLimited,
			Help: "Requests answered 429 by the catalog's own token bucket."}),
	}
	for _, o := range []string{outcomeApplied, outcomeReplayed, outcomeOutOfStock, outcomeKeyReused, outcomeShadow, outcomeReferenceReleased} {
		m.adjustments.WithLabelValues(o) // every outcome from the start, at 0
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.adjustments, m.rateLimited} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("catalog: registering metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) adjustment(outcome string) {
	if m != nil {
		m.adjustments.WithLabelValues(outcome).Inc()
	}
}

func (m *metrics) limited() {
	if m != nil {
		m.rateLimited.Inc()
	}
}
