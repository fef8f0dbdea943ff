// Package rollout is the autopilot: per cohort of routes, a migration state
// machine (legacy -> shadow -> canary steps -> new -> retired, plus paused
// and rolled-back) driven by a reconcile loop in the Kubernetes-controller
// style. Each interval the controller reads the plan, the persisted state and
// the metrics, decides ONE step, and writes it with the version it read; a
// write that lost a race is dropped and retried next interval, never forced.
//
// The package owns no storage, no HTTP and no leader election: it declares
// the small interfaces it needs (Store, Auditor, Leader, Source,
// DataChecker, LegacyUsage) and the fleet control plane and the gateway
// implement them.
package rollout

import (
	"math"
	"slices"
	"time"

	"github.com/ficus-gw/ficus/gateway/rollout/stats"
)

// Phase is where a cohort is in its migration.
type Phase string

// Phases. Legacy, Shadow, Canary, New and Retired are the way forward;
// Paused and RolledBack are where an operator or a failed gate put it.
const (
	PhaseLegacy     Phase = "legacy"
	PhaseShadow     Phase = "shadow"
	PhaseCanary     Phase = "canary"
	PhaseNew        Phase = "new"
	PhaseRetired    Phase = "retired"
	PhasePaused     Phase = "paused"
	PhaseRolledBack Phase = "rolled-back"
)

// Phases lists every phase, in the order dashboards show them.
var Phases = []Phase{PhaseLegacy, PhaseShadow, PhaseCanary, PhaseNew, PhaseRetired, PhasePaused, PhaseRolledBack}

// State is the persisted, typed progress of one cohort's rollout. It is
// everything a new controller (another replica after a leader change, or
// the same one after a restart) needs to continue mid-step without jumping:
// the step, when it started, and what the step has observed so far.
type State struct {
	// Cohort names the rollout; its routes move as one.
	Cohort string `json:"cohort"`
	// Routes are the cohort's routes; each gets Percent and Pinned.
	Routes []string `json:"routes"`
	Phase  Phase    `json:"phase"`
	// Step is the index of the current canary step in the plan; -1 before
	// the first.
	Step int `json:"step"`
	// Percent of users the routes send to the new side.
	Percent float64 `json:"percent"`
	// PinnedLegacy: every user is sent to legacy whatever the percent
	// (after a rollback to legacy).
	PinnedLegacy bool `json:"pinnedLegacy"`
	// StepStartedAt is when the current step (or phase) began, shifted
	// forward by any pause so that time in step counts active time only.
	StepStartedAt time.Time `json:"stepStartedAt"`
	// ObservedAt is the end of the last window added to Tally: the next
	// sample covers (ObservedAt, now].
	ObservedAt time.Time `json:"observedAt"`
	// Tally is what the current step has observed so far.
	Tally Tally `json:"tally"`
	// Baseline is the legacy side accumulated over the whole rollout: the
	// comparison when the step itself gives legacy too little traffic (at
	// 100%).
	Baseline SideTally `json:"baseline"`
	// Promoted: an operator approved leaving the current manual step.
	Promoted bool `json:"promoted,omitempty"`
	// PausedFrom is the phase a paused rollout resumes into.
	PausedFrom Phase `json:"pausedFrom,omitempty"`
	// PausedAt is when it was paused.
	PausedAt time.Time `json:"pausedAt,omitzero"`
	// Reason says why the last transition happened (a pause's or
	// rollback's reason, the failing gate).
	Reason string `json:"reason,omitempty"`
	// Gates are the verdicts of the last evaluation.
	Gates []GateResult `json:"gates,omitempty"`
	// UpdatedAt is when the state was last written.
	UpdatedAt time.Time `json:"updatedAt"`
	// Version is the store's version of this state when it was read; a
	// write carries it and fails if someone wrote in between.
	Version int64 `json:"version"`
}

// Tally is what a step has observed, accumulated interval by interval.
type Tally struct {
	Legacy    SideTally `json:"legacy"`
	New       SideTally `json:"new"`
	Fallbacks uint64    `json:"fallbacks"`
	// BreakerOpened: the new side's breaker was seen open during the step.
	BreakerOpened bool `json:"breakerOpened,omitempty"`
	// ShadowCompared pairs and how many of them differed for real.
	ShadowCompared  uint64 `json:"shadowCompared"`
	ShadowRealDiffs uint64 `json:"shadowRealDiffs"`
}

// SideTally is one side's traffic: requests, failures (5xx and timeouts)
// and the latency histogram: Bounds are the finite upper bounds (seconds),
// Buckets the count in each, not cumulative, with one more entry at the end
// for the +Inf bucket (JSON cannot carry an infinite bound).
type SideTally struct {
	Requests uint64    `json:"requests"`
	Errors   uint64    `json:"errors"`
	Bounds   []float64 `json:"bounds,omitempty"`
	Buckets  []uint64  `json:"buckets,omitempty"`
}

// add accumulates s into t. Histograms with other bounds than t's replace
// nothing and are dropped: a gateway whose buckets changed mid-step starts
// its latency picture afresh rather than mixing two scales.
func (t *SideTally) add(s SideTally) {
	t.Requests += s.Requests
	t.Errors += s.Errors
	if len(s.Bounds) == 0 {
		return
	}
	if len(t.Bounds) == 0 {
		t.Bounds = append([]float64(nil), s.Bounds...)
		t.Buckets = make([]uint64, len(s.Bounds)+1)
	}
	if !sameBounds(t.Bounds, s.Bounds) {
		t.Bounds = append(t.Bounds[:0], s.Bounds...)
		t.Buckets = make([]uint64, len(s.Bounds)+1)
	}
	for i, c := range s.Buckets {
		if i < len(t.Buckets) {
			t.Buckets[i] += c
		}
	}
}

func sameBounds(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// P99 is the side's 99th percentile latency estimated from its buckets.
func (t SideTally) P99() (time.Duration, bool) {
	v, ok := stats.Quantile(0.99, append(slices.Clone(t.Bounds), math.Inf(1)), t.Buckets)
	return time.Duration(v * float64(time.Second)), ok
}

// ErrorRate is Errors over Requests, 0 without requests.
func (t SideTally) ErrorRate() float64 {
	if t.Requests == 0 {
		return 0
	}
	return float64(t.Errors) / float64(t.Requests)
}

func (t *Tally) add(s Sample) {
	t.Legacy.add(s.Legacy)
	t.New.add(s.New)
	t.Fallbacks += s.Fallbacks
	t.BreakerOpened = t.BreakerOpened || s.BreakerOpen
	t.ShadowCompared += s.ShadowCompared
	t.ShadowRealDiffs += s.ShadowRealDiffs
}

// Verdict is a gate's answer.
type Verdict string

// Verdicts. Inconclusive means "not enough data yet": the rollout waits;
// it never counts as a pass.
const (
	Pass         Verdict = "pass"
	Fail         Verdict = "fail"
	Inconclusive Verdict = "inconclusive"
)

// Gate names, as they appear in metrics, audit records and status.
const (
	GateShadow     = "shadow"
	GateErrors     = "errors"
	GateLatency    = "latency"
	GateResilience = "resilience"
	GateData       = "data"
	GateRetire     = "retire"
	GateStep       = "step" // the step's own minimum duration and requests
	GateManual     = "manual"
)

// GateResult is one gate's verdict with what it measured and against what.
type GateResult struct {
	Gate    string  `json:"gate"`
	Verdict Verdict `json:"verdict"`
	// Measured values by name (rates 0..1, durations in seconds, counts).
	Measured map[string]float64 `json:"measured"`
	// Thresholds the measured values were judged against, by name.
	Thresholds map[string]float64 `json:"thresholds"`
	// Detail is one line for humans.
	Detail string `json:"detail"`
}

// Record is one audited transition.
type Record struct {
	Time time.Time `json:"time"`
	// Actor is "autopilot" for the controller's own moves, otherwise the
	// operator (the admin token's name).
	Actor  string   `json:"actor"`
	Cohort string   `json:"cohort"`
	Routes []string `json:"routes"`
	// Action: start, advance, hold, promote, pause, resume, abort,
	// rollback, retire.
	Action      string  `json:"action"`
	FromPhase   Phase   `json:"fromPhase"`
	ToPhase     Phase   `json:"toPhase"`
	FromPercent float64 `json:"fromPercent"`
	ToPercent   float64 `json:"toPercent"`
	Step        int     `json:"step"`
	// Gate is the failing gate of a rollback, else empty.
	Gate   string `json:"gate,omitempty"`
	Reason string `json:"reason"`
	// Gates are every gate's verdict at the time, the failing one's
	// measured values and thresholds included.
	Gates []GateResult `json:"gates,omitempty"`
}

// Actor of the controller's own transitions.
const ActorAutopilot = "autopilot"
