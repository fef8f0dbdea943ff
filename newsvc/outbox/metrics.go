package outbox

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, declared once; dashboards and alerts refer to them.
const (
	MetricDeliveries   = "ficus_outbox_deliveries_total"
	MetricDeliveryLag  = "ficus_outbox_delivery_lag_seconds"
	MetricLastAckedSeq = "ficus_outbox_acked_seq"
)

// dispatcherMetrics are nil-safe: a Dispatcher without WithMetrics counts
// nothing.
type dispatcherMetrics struct {
	deliveries *prometheus.CounterVec   // subscriber, outcome
	lag        *prometheus.HistogramVec // subscriber
	acked      *prometheus.GaugeVec     // subscriber
}

// WithMetrics registers the dispatcher's metrics on reg, labelled with the
// producing service (const label service) so that several services can
// share one registry: deliveries by subscriber and outcome (ok, error), the
// delay from an event's OccurredAt to its acknowledgement, and the last
// acknowledged Seq per subscriber (compare with the log's head to see a
// stuck subscriber). A registration error is returned by Run.
func WithMetrics(reg prometheus.Registerer, service string) Option {
	return func(d *Dispatcher) {
		labels := prometheus.Labels{"service": service}
		m := &dispatcherMetrics{
			deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDeliveries, ConstLabels: labels,
				Help: "Webhook deliveries of outbox events by subscriber and outcome (ok, error); errors are retried."},
				[]string{"subscriber", "outcome"}),
			lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricDeliveryLag, ConstLabels: labels,
				Help:    "Seconds from an event's occurredAt to its acknowledgement by a subscriber.",
				Buckets: []float64{.005, .01, .05, .1, .5, 1, 5, 30, 120, 600, 3600}},
				[]string{"subscriber"}),
			acked: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricLastAckedSeq, ConstLabels: labels,
				Help: "Seq of the last event a subscriber acknowledged (or skipped by its type filter)."},
				[]string{"subscriber"}),
		}
		var errs []error
		for _, c := range []prometheus.Collector{m.deliveries, m.lag, m.acked} {
			if err := reg.Register(c); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			d.setupErr = fmt.Errorf("outbox: registering metrics: %w", err)
			return
		}
		d.metrics = m
	}
}

func (m *dispatcherMetrics) delivered(sub string, ok bool, occurred, now time.Time) {
	if m == nil {
		return
	}
	if !ok {
		m.deliveries.WithLabelValues(sub, "error").Inc()
		return
	}
	m.deliveries.WithLabelValues(sub, "ok").Inc()
	m.lag.WithLabelValues(sub).Observe(max(0, now.Sub(occurred).Seconds()))
}

func (m *dispatcherMetrics) progressed(sub string, seq int64) {
	if m == nil {
		return
	}
	m.acked.WithLabelValues(sub).Set(float64(seq))
}
