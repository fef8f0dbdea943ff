package rollout

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of the autopilot, declared once: dashboards and alert rules
// refer to these constants.
const (
	// MetricPhase is 1 for each route's current phase and 0 for the others.
	MetricPhase = "ficus_rollout_phase"
	// MetricStepPercent is the percent of users the autopilot sends to new.
	MetricStepPercent = "ficus_rollout_step_percent"
	// MetricGateChecks counts gate evaluations by verdict.
	MetricGateChecks = "ficus_rollout_gate_checks_total"
	// MetricRollbacks counts automatic rollbacks by failing gate.
	MetricRollbacks = "ficus_rollout_rollbacks_total"
)

// Metrics are the autopilot's series. A nil *Metrics records nothing.
type Metrics struct {
	phase     *prometheus.GaugeVec
	percent   *prometheus.GaugeVec
	checks    *prometheus.CounterVec
	rollbacks *prometheus.CounterVec
}

// NewMetrics registers the autopilot's metrics on reg. Only the leader
// evaluates gates, so in a fleet the check and rollback counters grow on one
// replica at a time; sum them over replicas.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricPhase, Help: "Rollout phase of each route: 1 for the current phase, 0 for the others.",
		}, []string{"route", "phase"}),
		percent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricStepPercent, Help: "Percent of users the rollout sends to the new side, by route.",
		}, []string{"route"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricGateChecks, Help: "Rollout gate evaluations, by route, gate and verdict (pass, fail, inconclusive).",
		}, []string{"route", "gate", "result"}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRollbacks, Help: "Automatic rollbacks, by route and the gate that failed.",
		}, []string{"route", "gate"}),
	}
	for _, c := range []prometheus.Collector{m.phase, m.percent, m.checks, m.rollbacks} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe exports a cohort's phase and percent.
func (c *Controller) observe(p *Plan, st State) {
	m := c.o.Metrics
	if m == nil {
		return
	}
	for _, r := range p.Routes {
		for _, ph := range Phases {
			v := 0.0
			if ph == st.Phase {
				v = 1
			}
			m.phase.WithLabelValues(r, string(ph)).Set(v)
		}
		pct := st.Percent
		if st.PinnedLegacy {
			pct = 0
		}
		m.percent.WithLabelValues(r).Set(pct)
	}
}

// checked counts one evaluation's verdicts.
func (m *Metrics) checked(routes []string, rs []GateResult) {
	if m == nil {
		return
	}
	for _, r := range routes {
		for _, g := range rs {
			m.checks.WithLabelValues(r, g.Gate, string(g.Verdict)).Inc()
		}
	}
}

func (m *Metrics) rollback(routes []string, gate string) {
	if m == nil {
		return
	}
	for _, r := range routes {
		m.rollbacks.WithLabelValues(r, gate).Inc()
	}
}

// declare creates every counter series of routes at zero, so that a
// dashboard's rate() and an alert's increase() see the first check and the
// first rollback as an increase rather than as a series appearing.
func (m *Metrics) declare(routes []string) {
	if m == nil {
		return
	}
	for _, r := range routes {
		for _, g := range []string{GateShadow, GateErrors, GateLatency, GateResilience, GateData, GateRetire, GateStep, GateManual} {
			for _, v := range []Verdict{Pass, Fail, Inconclusive} {
				m.checks.WithLabelValues(r, g, string(v)).Add(0)
			}
		}
		for _, g := range []string{GateShadow, GateErrors, GateLatency, GateResilience} {
			m.rollbacks.WithLabelValues(r, g).Add(0)
		}
	}
}
