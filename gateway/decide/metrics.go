package decide

import "github.com/prometheus/client_golang/prometheus"

// Metric names of the decision engine, declared once.
const (
	MetricOverrideRejected = "ficus_override_rejected_total"
	MetricCanaryPercent    = "ficus_route_canary_percent"
	MetricFlagErrors       = "ficus_flag_evaluation_errors_total"
	MetricFlagCacheLookups = "ficus_flag_cache_lookups_total"
	MetricFlagCacheFlushes = "ficus_flag_cache_flushes_total"
)

type metrics struct {
	overrideRejected *prometheus.CounterVec
	canaryPercent    *prometheus.GaugeVec
	flagErrors       *prometheus.CounterVec
	cacheLookups     *prometheus.CounterVec
	cacheFlushes     prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		overrideRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricOverrideRejected,
			Help: "Override headers ignored because the request had no valid token, was not from a trusted network, or named no backend.",
		}, []string{"route"}),
		canaryPercent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricCanaryPercent,
			Help: "Live canary percent (0-100) of users a route sends to its new backend.",
		}, []string{"route"}),
		flagErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricFlagErrors,
			Help: "Flag evaluations that failed; the request was served by the route's default (legacy).",
		}, []string{"route"}),
		cacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricFlagCacheLookups,
			Help: "Flag answer cache lookups by result (hit, miss).",
		}, []string{"result"}),
		cacheFlushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricFlagCacheFlushes,
			Help: "Times the flag answer cache was dropped because the provider's configuration changed.",
		}),
	}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.overrideRejected, m.canaryPercent, m.flagErrors, m.cacheLookups, m.cacheFlushes} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
