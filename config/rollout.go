package config

import (
	"fmt"
	"net/url"
	"time"
)

// Rollout is a route's progressive-delivery plan, run by the autopilot:
// shadow first, then canary steps, then new, then retired, each move taken
// only when the gates pass, and a rollback when one fails. Routes sharing a
// cohort move as one; the plan is declared once, on one route of the cohort.
type Rollout struct {
	// Interval is how often the gates are evaluated and one step decided.
	// Default 30s; at least 1s.
	Interval time.Duration `yaml:"interval"`
	// Steps are the canary percents in increasing order, the last one 100.
	// Default: 1, 5, 25, 50, 100, each for at least 5m and 200 requests on
	// the new side.
	Steps []RolloutStep `yaml:"steps"`
	// Rollback says where a failed gate sends the route: "legacy" (percent 0
	// and every user pinned to legacy) or "previous" (the previous step's
	// percent; 0 from the first step). Either way the route then stays put
	// until an operator acts. Default "legacy".
	Rollback string `yaml:"rollback"`
	// Gates are the checks and their thresholds.
	Gates RolloutGates `yaml:"gates"`
}

// RolloutStep is one canary step.
type RolloutStep struct {
	// Percent of users sent to the new side during the step, in (0, 100].
	Percent float64 `yaml:"percent"`
	// MinDuration the step lasts at least, however good the numbers.
	// Default 5m; 0 is not allowed (a step needs time to show a problem).
	MinDuration time.Duration `yaml:"minDuration"`
	// MinRequests the new side must serve during the step before it may
	// advance. Default 200.
	MinRequests uint64 `yaml:"minRequests"`
	// Manual: the step advances only after an operator's promote, even when
	// every gate passes. Default false.
	Manual bool `yaml:"manual"`
}

// RolloutGates are the gates of one plan. Every gate has a minimum sample:
// below it the verdict is "inconclusive" and the rollout waits.
type RolloutGates struct {
	Shadow     ShadowGate     `yaml:"shadow"`
	Errors     ErrorGate      `yaml:"errors"`
	Latency    LatencyGate    `yaml:"latency"`
	Resilience ResilienceGate `yaml:"resilience"`
	Data       DataGate       `yaml:"data"`
	Retire     RetireGate     `yaml:"retire"`
}

// ShadowGate: the new side's answers must match the legacy's before any user
// moves (the shadow phase) and keep matching at each step.
type ShadowGate struct {
	// Disabled skips the shadow phase and gate. Required (true) on a route
	// without shadow traffic (routes[].shadow). Default false.
	Disabled bool `yaml:"disabled"`
	// MaxRealDiffRate is the highest share (0..1) of compared pairs with a
	// real difference, after noise cancellation and ignore rules. Default
	// 0.001 (0.1%).
	MaxRealDiffRate float64 `yaml:"maxRealDiffRate"`
	// MinCompared pairs before a verdict. Default 200.
	MinCompared uint64 `yaml:"minCompared"`
	// MinDuration of the shadow phase. Default 5m.
	MinDuration time.Duration `yaml:"minDuration"`
}

// ErrorGate compares the new side's failure rate (5xx and timeouts) with the
// legacy's over the same window, with Fisher's exact test.
type ErrorGate struct {
	// Alpha is the false-alarm rate of one check: the step fails only when
	// a difference this large had less than Alpha chance of arising between
	// identical sides. In (0, 0.2]. Default 0.01.
	Alpha float64 `yaml:"alpha"`
	// Tolerance is how much worse (absolute rate, 0..1) the new side may be
	// before a significant difference fails the step. Default 0.
	Tolerance float64 `yaml:"tolerance"`
	// MinRequests on the new side before a verdict. Default 100.
	MinRequests uint64 `yaml:"minRequests"`
}

// LatencyGate compares the new side's latency with the legacy's.
type LatencyGate struct {
	// Factor: the step fails when the new p99 exceeds Factor times the
	// legacy p99 and a Mann-Whitney U test says the new side is slower
	// (at Alpha). At least 1. Default 1.5.
	Factor float64 `yaml:"factor"`
	// MaxP99 fails the step when the new p99 exceeds it, whatever the
	// legacy does. Default 0: no absolute bound.
	MaxP99 time.Duration `yaml:"maxP99"`
	// Alpha of the Mann-Whitney test, in (0, 0.2]. Default 0.01.
	Alpha float64 `yaml:"alpha"`
	// MinRequests on the new side before a verdict (a p99 of fewer than
	// 100 requests is its maximum). Default 200.
	MinRequests uint64 `yaml:"minRequests"`
}

// ResilienceGate: the new side's circuit breaker opening, or more fallbacks
// to legacy than allowed, fails the step.
type ResilienceGate struct {
	// MaxFallbacks to legacy during a step. Default 0.
	MaxFallbacks uint64 `yaml:"maxFallbacks"`
	// MinRequests on the new side before a pass. Default 50.
	MinRequests uint64 `yaml:"minRequests"`
}

// DataGate holds a write route at its step until the data stores agree:
// the latest reconcile clean and the sync lag below a bound, checked before
// each increase.
type DataGate struct {
	// Enabled turns the gate on; set it on routes that write. Default false.
	Enabled bool `yaml:"enabled"`
	// MaxSyncLag is the highest dual-run sync lag allowed. Default 30s.
	MaxSyncLag time.Duration `yaml:"maxSyncLag"`
}

// RetireGate: the route is retired (its legacy code may go) only when the
// legacy side served nothing for Window while the route was on new.
type RetireGate struct {
	// Window without a single legacy hit. Default 0: retire.window.
	Window time.Duration `yaml:"window"`
}

// Rollback modes.
const (
	RollbackLegacy   = "legacy"
	RollbackPrevious = "previous"
)

// DefaultRolloutSteps are the steps of a plan that names none.
func DefaultRolloutSteps() []RolloutStep {
	var s []RolloutStep
	for _, p := range []float64{1, 5, 25, 50, 100} {
		s = append(s, RolloutStep{Percent: p})
	}
	return s
}

// applyDefaults fills a plan's unset fields; nil-safe.
func (r *Rollout) applyDefaults() {
	if r == nil {
		return
	}
	if r.Interval == 0 {
		r.Interval = 30 * time.Second
	}
	if r.Steps == nil {
		r.Steps = DefaultRolloutSteps()
	}
	for i := range r.Steps {
		s := &r.Steps[i]
		if s.MinDuration == 0 {
			s.MinDuration = 5 * time.Minute
		}
		if s.MinRequests == 0 {
			s.MinRequests = 200
		}
	}
	if r.Rollback == "" {
		r.Rollback = RollbackLegacy
	}
	g := &r.Gates
	if g.Shadow.MaxRealDiffRate == 0 {
		g.Shadow.MaxRealDiffRate = 0.001
	}
	if g.Shadow.MinCompared == 0 {
		g.Shadow.MinCompared = 200
	}
	if g.Shadow.MinDuration == 0 {
		g.Shadow.MinDuration = 5 * time.Minute
	}
	if g.Errors.Alpha == 0 {
		g.Errors.Alpha = 0.01
	}
	if g.Errors.MinRequests == 0 {
		g.Errors.MinRequests = 100
	}
	if g.Latency.Factor == 0 {
		g.Latency.Factor = 1.5
	}
	if g.Latency.Alpha == 0 {
		g.Latency.Alpha = 0.01
	}
	if g.Latency.MinRequests == 0 {
		g.Latency.MinRequests = 200
	}
	if g.Resilience.MinRequests == 0 {
		g.Resilience.MinRequests = 50
	}
	if g.Data.MaxSyncLag == 0 {
		g.Data.MaxSyncLag = 30 * time.Second
	}
}

// validateRollout checks the plan of route r at key path p.
func (c *Config) validateRollout(p string, r Route, add func(string, any, string, ...any)) {
	ro := r.Rollout
	if r.New == "" {
		add(p, r.Name, "needs a new upstream (routes[].new): a rollout moves users to it")
	}
	if ro.Interval < time.Second {
		add(p+".interval", ro.Interval, "must be at least 1s")
	}
	if len(ro.Steps) == 0 {
		add(p+".steps", ro.Steps, "at least one step is required, the last at 100")
	}
	prev := 0.0
	for i, s := range ro.Steps {
		sp := fmt.Sprintf("%s.steps[%d]", p, i)
		switch {
		case s.Percent <= 0 || s.Percent > 100:
			add(sp+".percent", s.Percent, "must be a percent in (0, 100]")
		case s.Percent <= prev:
			add(sp+".percent", s.Percent, "must be greater than the previous step's %v", prev)
		}
		prev = max(prev, s.Percent)
		if s.MinDuration <= 0 {
			add(sp+".minDuration", s.MinDuration, "must be positive: a step needs time to show a problem")
		}
	}
	if n := len(ro.Steps); n > 0 && ro.Steps[n-1].Percent != 100 {
		add(fmt.Sprintf("%s.steps[%d].percent", p, n-1), ro.Steps[n-1].Percent, "the last step must be 100")
	}
	if ro.Rollback != RollbackLegacy && ro.Rollback != RollbackPrevious {
		add(p+".rollback", ro.Rollback, "must be legacy or previous")
	}
	g := ro.Gates
	if !g.Shadow.Disabled && r.Shadow == nil {
		add(p+".gates.shadow", r.Name, "needs shadow traffic on the route (routes[].shadow) or disabled: true")
	}
	checkRate := func(path string, v float64) {
		if v < 0 || v > 1 {
			add(path, v, "must be a rate between 0 and 1")
		}
	}
	checkAlpha := func(path string, v float64) {
		if v <= 0 || v > 0.2 {
			add(path, v, "must be a false-alarm rate in (0, 0.2], e.g. 0.01")
		}
	}
	checkRate(p+".gates.shadow.maxRealDiffRate", g.Shadow.MaxRealDiffRate)
	if g.Shadow.MinDuration < 0 {
		add(p+".gates.shadow.minDuration", g.Shadow.MinDuration, "must not be negative")
	}
	checkAlpha(p+".gates.errors.alpha", g.Errors.Alpha)
	checkRate(p+".gates.errors.tolerance", g.Errors.Tolerance)
	if g.Latency.Factor < 1 {
		add(p+".gates.latency.factor", g.Latency.Factor, "must be at least 1")
	}
	if g.Latency.MaxP99 < 0 {
		add(p+".gates.latency.maxP99", g.Latency.MaxP99, "must not be negative")
	}
	checkAlpha(p+".gates.latency.alpha", g.Latency.Alpha)
	if g.Data.MaxSyncLag < 0 {
		add(p+".gates.data.maxSyncLag", g.Data.MaxSyncLag, "must not be negative")
	}
	if g.Retire.Window < 0 {
		add(p+".gates.retire.window", g.Retire.Window, "must not be negative")
	}
	// One plan per cohort: routes sharing a cohort move together, so a
	// second plan would be a second opinion on the same percent.
	earlier := true
	for i, o := range c.Routes {
		if o.Name == r.Name {
			earlier = false
			continue
		}
		if o.Cohort != r.Cohort {
			continue
		}
		if earlier && o.Rollout != nil {
			add(p, r.Name, "cohort %q already has a plan on routes[%d] (%s): declare it once per cohort", r.Cohort, i, o.Name)
		}
		if o.New == "" {
			add(p, r.Name, "routes[%d] (%s) shares cohort %q but has no new upstream: the cohort moves as one", i, o.Name, r.Cohort)
		}
	}
}

// Autopilot configures the process that runs the rollout plans (on one
// replica: the control plane's leader). Every field is optional.
type Autopilot struct {
	// Prometheus is the base URL of a Prometheus that scrapes every gateway
	// replica (e.g. http://127.0.0.1:9090). Set it for a fleet: the gates
	// then judge the traffic of all replicas. Empty (the default): the
	// autopilot reads this gateway's own counters, which is right for a
	// single gateway only.
	Prometheus string `yaml:"prometheus"`
	// Tick is how often the autopilot wakes to see which cohort is due;
	// each cohort is evaluated once per its plan's interval. Default 1s.
	Tick time.Duration `yaml:"tick"`
	// Reconcile says where the three systems are for the data gate
	// (routes[].rollout.gates.data): the autopilot runs the dual-run
	// reconcile against them. Required when a plan enables the data gate.
	Reconcile ReconcileTargets `yaml:"reconcile"`
}

// ReconcileTargets are the base URLs the data gate's reconcile reads.
type ReconcileTargets struct {
	// Legacy is the legacy shop, e.g. http://127.0.0.1:8081.
	Legacy string `yaml:"legacy"`
	// Catalog is the Catalog service, e.g. http://127.0.0.1:8082.
	Catalog string `yaml:"catalog"`
	// Orders is the Order service, e.g. http://127.0.0.1:8083.
	Orders string `yaml:"orders"`
	// Every is how often the reconcile runs while a data-gated rollout
	// is in a canary step (it reads every product and order of both
	// sides). Default 1m.
	Every time.Duration `yaml:"every"`
}

// Configured reports whether the three URLs are set.
func (t ReconcileTargets) Configured() bool {
	return t.Legacy != "" && t.Catalog != "" && t.Orders != ""
}

func (c *Config) applyAutopilotDefaults() {
	a := &c.Autopilot
	if a.Tick == 0 {
		a.Tick = time.Second
	}
	if a.Reconcile.Every == 0 {
		a.Reconcile.Every = time.Minute
	}
}

func (c *Config) validateAutopilot(add func(path string, v any, format string, args ...any)) {
	a := c.Autopilot
	checkURL := func(path, v string) {
		if v == "" {
			return
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			add(path, v, "must be an http(s) base URL without a path, e.g. http://127.0.0.1:9090")
		}
	}
	checkURL("autopilot.prometheus", a.Prometheus)
	if a.Tick < 100*time.Millisecond || a.Tick > time.Minute {
		add("autopilot.tick", a.Tick, "must be between 100ms and 1m")
	}
	r := a.Reconcile
	checkURL("autopilot.reconcile.legacy", r.Legacy)
	checkURL("autopilot.reconcile.catalog", r.Catalog)
	checkURL("autopilot.reconcile.orders", r.Orders)
	if r.Every < time.Second {
		add("autopilot.reconcile.every", r.Every, "must be at least 1s")
	}
	some := r.Legacy != "" || r.Catalog != "" || r.Orders != ""
	if some && !r.Configured() {
		add("autopilot.reconcile", "", "set legacy, catalog and orders together: the reconcile compares all three")
	}
	for i, rt := range c.Routes {
		if rt.Rollout != nil && rt.Rollout.Gates.Data.Enabled && !r.Configured() {
			add(fmt.Sprintf("routes[%d].rollout.gates.data.enabled", i), true,
				"needs autopilot.reconcile.{legacy,catalog,orders}: the data gate runs the reconcile against them")
		}
	}
}
