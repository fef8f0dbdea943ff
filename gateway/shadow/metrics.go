package shadow

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of shadow traffic, declared once: dashboards and alert rules
// refer to these constants.
const (
	MetricRequests     = "ficus_shadow_requests_total"
	MetricFieldDiffs   = "ficus_shadow_field_diffs_total"
	MetricDuration     = "ficus_shadow_duration_seconds"
	MetricInFlight     = "ficus_shadow_in_flight"
	MetricExpiredRules = "ficus_shadow_ignore_rules_expired"
)

// Result is the outcome of one sampled request; its String is the result
// label of ficus_shadow_requests_total.
type Result uint8

// Results.
const (
	// ResultMatch: both answers agree (after ignore rules and noise).
	ResultMatch Result = iota
	// ResultDiff: at least one field differs.
	ResultDiff
	// ResultError: the shadow exchange failed (connect, timeout, breaker
	// open mid-flight, unreadable answer).
	ResultError
	// ResultDropped: not mirrored because the route's shadow pool was full
	// or the target's shadow breaker was open.
	ResultDropped
	// ResultSkipped: not compared by design: request or response body over
	// its cap, a streamed primary response, a primary that failed, a legacy
	// answer without a mapping, or a target identical to the served side.
	ResultSkipped
	numResults
)

var resultNames = [...]string{ResultMatch: "match", ResultDiff: "diff", ResultError: "error", ResultDropped: "dropped", ResultSkipped: "skipped"}

// String returns the metric label of r.
func (r Result) String() string { return resultNames[r] }

// durationBuckets are classic buckets (seconds) of one shadow exchange, from
// a fast read to the default 2 s timeout and beyond.
var durationBuckets = []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10}

type metrics struct {
	fieldDiffs *prometheus.CounterVec
	// inFlight counts copies holding a queue place; the gauge reads it at
	// scrape time, so the primary path pays an integer add, not a float
	// compare-and-swap loop on a shared cache line.
	inFlight      atomic.Int64
	inFlightGauge prometheus.GaugeFunc
}

// routeMetrics are one route's pre-resolved children, so the hot path (a
// dropped request) is one atomic add.
type routeMetrics struct {
	results  [numResults]prometheus.Counter
	duration prometheus.Observer
}

func newMetrics(reg *prometheus.Registry, routes []*routeShadow, expired func(*routeShadow) float64) (*metrics, error) {
	m := &metrics{
		fieldDiffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricFieldDiffs,
			Help: "Fields that differed between the primary and the shadow answer, by route and field pattern (array indices as *, at most 100 fields per route, the rest as \"other\").",
		}, []string{"route", "field"}),
	}
	m.inFlightGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: MetricInFlight, Help: "Shadow copies holding a place in a route's queue (queued, mirroring, comparing or storing).",
	}, func() float64 { return float64(m.inFlight.Load()) })
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRequests, Help: "Sampled requests by route and shadow result (match, diff, error, dropped, skipped).",
	}, []string{"route", "result"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: MetricDuration, Help: "Time of one shadow exchange with the target, by route.", Buckets: durationBuckets,
	}, []string{"route"})
	for _, c := range []prometheus.Collector{requests, duration, m.fieldDiffs, m.inFlightGauge} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, rs := range routes {
		if rs == nil {
			continue
		}
		for r := range numResults {
			rs.m.results[r] = requests.WithLabelValues(rs.name, r.String())
		}
		rs.m.duration = duration.WithLabelValues(rs.name)
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        MetricExpiredRules,
			Help:        "Ignore rules past their expiry date, by route: they no longer apply; renew or delete them.",
			ConstLabels: prometheus.Labels{"route": rs.name},
		}, func() float64 { return expired(rs) })
		if err := reg.Register(g); err != nil {
			return nil, err
		}
	}
	return m, nil
}
