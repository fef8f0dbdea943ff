package order

import (
	"errors"
	"fmt"

	"github.com/ficus-gw/ficus/internal/svcmetrics"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, declared once (dashboards and alerts refer to them). The
// service also exports ficus_outbox_* (service="orders") and
// ficus_http_request* (svcmetrics).
const (
	MetricPlaced        = "ficus_order_placed_total"
	MetricReplays       = "ficus_order_idempotent_replays_total"
	MetricCatalogCalls  = "ficus_order_catalog_calls_total"
	MetricBreakerOpen   = "ficus_order_catalog_breaker_open"
	MetricReleaseFailed = "ficus_order_stock_release_failures_total"
	MetricRepairs       = "ficus_order_repairs_total"
)

// Kinds of repair, the label values of metricRepairs.
const (
	// repairClaimFinished: a claim pending beyond its lease whose order
	// exists was finished from it.
	repairClaimFinished = "claim_finished"
	// repairClaimReleased: a claim pending beyond its lease without an
	// order was retired and its reservations released by reference.
	repairClaimReleased = "claim_released"
	// repairReservationUnknown: a reservation's answer was lost; the
	// placement failed and its reservations are released by reference.
	repairReservationUnknown = "reservation_outcome_unknown"
	// repairReferenceReleased: the Catalog acknowledged a release by
	// reference queued by one of the repairs above.
	repairReferenceReleased = "reference_released"
)

// metrics are the service's Prometheus instruments.
type metrics struct {
	placed        prometheus.Counter
	replays       prometheus.Counter
	catalogCalls  *prometheus.CounterVec // outcome: ok, failure, rejected (breaker open)
	breakerOpen   prometheus.Gauge
	releaseFailed prometheus.Counter
	repairs       *prometheus.CounterVec // kind: see the repair* constants
	http          *svcmetrics.HTTP       // nil when not exported
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		placed: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricPlaced,
			Help: "Orders placed (first responses only, not idempotent replays)."}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricReplays,
			Help: "POST /orders answered by replaying the reply stored under their Idempotency-Key."}),
		catalogCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricCatalogCalls,
			Help: "Calls to the Catalog by outcome: ok, failure (transport, timeout, 5xx), rejected (breaker open)."},
			[]string{"outcome"}),
		breakerOpen: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricBreakerOpen,
			Help: "1 while the Catalog circuit breaker is open or half-open, else 0."}),
		releaseFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricReleaseFailed,
			Help: "Stock releases the Catalog did not acknowledge (retried by Run); a rising rate means stock is held."}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRepairs,
			Help: "Repairs of work left unfinished by a crash or a lost answer, by kind: claim_finished, claim_released, reservation_outcome_unknown, reference_released."},
			[]string{"kind"}),
	}
	for _, k := range []string{repairClaimFinished, repairClaimReleased, repairReservationUnknown, repairReferenceReleased} {
		m.repairs.WithLabelValues(k) // export every kind from the start, at 0
	}
	for _, o := range []string{"ok", "failure", "rejected"} {
		m.catalogCalls.WithLabelValues(o) // every outcome from the start, at 0
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.placed, m.replays, m.catalogCalls, m.breakerOpen, m.releaseFailed, m.repairs} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	h, err := svcmetrics.NewHTTP(reg)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("order: registering metrics: %w", err)
	}
	m.http = h
	return m, nil
}
