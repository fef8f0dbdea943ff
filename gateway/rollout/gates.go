package rollout

import (
	"fmt"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/rollout/stats"
)

// Plan is one cohort's rollout plan: the routes that move as one, the new
// upstream (whose breaker the resilience gate watches) and the configured
// steps and gates.
type Plan struct {
	Cohort      string
	Routes      []string
	NewUpstream string
	config.Rollout
}

// PlansFromConfig returns a plan per cohort that declares one, its routes in
// configuration order. A retirement window left at 0 takes retire.window.
func PlansFromConfig(c *config.Config) []Plan {
	var plans []Plan
	for _, r := range c.Routes {
		if r.Rollout == nil {
			continue
		}
		p := Plan{Cohort: r.Cohort, NewUpstream: r.New, Rollout: *r.Rollout}
		p.Steps = append([]config.RolloutStep(nil), r.Rollout.Steps...)
		if p.Gates.Retire.Window == 0 {
			p.Gates.Retire.Window = c.Retire.Window
		}
		for _, o := range c.Routes {
			if o.Cohort == r.Cohort {
				p.Routes = append(p.Routes, o.Name)
			}
		}
		plans = append(plans, p)
	}
	return plans
}

// comparison returns the legacy side to compare the step's new side with:
// the step's own legacy traffic when it has at least min requests, else that
// plus the legacy traffic of the rollout's earlier steps (at 100% the step
// itself sends legacy nothing).
func comparison(t Tally, baseline SideTally, min uint64) SideTally {
	if t.Legacy.Requests >= min {
		return t.Legacy
	}
	var c SideTally
	c.add(baseline)
	c.add(t.Legacy)
	return c
}

// shadowGate: the share of compared pairs with a real difference, over at
// least MinCompared pairs.
func shadowGate(g config.ShadowGate, t Tally) GateResult {
	rate := 0.0
	if t.ShadowCompared > 0 {
		rate = float64(t.ShadowRealDiffs) / float64(t.ShadowCompared)
	}
	r := GateResult{
		Gate:       GateShadow,
		Measured:   map[string]float64{"compared": float64(t.ShadowCompared), "realDiffRate": rate},
		Thresholds: map[string]float64{"minCompared": float64(g.MinCompared), "maxRealDiffRate": g.MaxRealDiffRate},
	}
	switch {
	case t.ShadowCompared < g.MinCompared:
		r.Verdict, r.Detail = Inconclusive, fmt.Sprintf("%d of %d compared pairs", t.ShadowCompared, g.MinCompared)
	case rate > g.MaxRealDiffRate:
		r.Verdict, r.Detail = Fail, fmt.Sprintf("real diff rate %.3f%% > %.3f%% over %d pairs", 100*rate, 100*g.MaxRealDiffRate, t.ShadowCompared)
	default:
		r.Verdict, r.Detail = Pass, fmt.Sprintf("real diff rate %.3f%% <= %.3f%% over %d pairs", 100*rate, 100*g.MaxRealDiffRate, t.ShadowCompared)
	}
	return r
}

// errorGate: Fisher's exact test of the new side's failure rate against the
// legacy's. Fails when p < alpha and the new side is worse by more than the
// tolerance.
func errorGate(g config.ErrorGate, t Tally, baseline SideTally) GateResult {
	leg := comparison(t, baseline, g.MinRequests)
	nw := t.New
	p := stats.FisherGreater(nw.Errors, nw.Requests, leg.Errors, leg.Requests)
	r := GateResult{
		Gate: GateErrors,
		Measured: map[string]float64{
			"newRequests": float64(nw.Requests), "newErrorRate": nw.ErrorRate(),
			"legacyRequests": float64(leg.Requests), "legacyErrorRate": leg.ErrorRate(), "pValue": p,
		},
		Thresholds: map[string]float64{"minRequests": float64(g.MinRequests), "alpha": g.Alpha, "tolerance": g.Tolerance},
	}
	switch {
	case nw.Requests < g.MinRequests || leg.Requests < g.MinRequests:
		r.Verdict, r.Detail = Inconclusive, fmt.Sprintf("%d new and %d legacy requests, %d each needed", nw.Requests, leg.Requests, g.MinRequests)
	case p < g.Alpha && nw.ErrorRate()-leg.ErrorRate() > g.Tolerance:
		r.Verdict, r.Detail = Fail, fmt.Sprintf("new fails %.2f%% vs legacy %.2f%% (Fisher p = %.2g < %g)", 100*nw.ErrorRate(), 100*leg.ErrorRate(), p, g.Alpha)
	default:
		r.Verdict, r.Detail = Pass, fmt.Sprintf("new fails %.2f%% vs legacy %.2f%% (Fisher p = %.2g)", 100*nw.ErrorRate(), 100*leg.ErrorRate(), p)
	}
	return r
}

// latencyGate: new p99 against Factor x legacy p99 (confirmed by a
// Mann-Whitney U test on the two histograms) and against MaxP99.
func latencyGate(g config.LatencyGate, t Tally, baseline SideTally) GateResult {
	leg := comparison(t, baseline, g.MinRequests)
	nw := t.New
	np99, nok := nw.P99()
	lp99, lok := leg.P99()
	r := GateResult{
		Gate: GateLatency,
		Measured: map[string]float64{
			"newRequests": float64(nw.Requests), "legacyRequests": float64(leg.Requests),
			"newP99Seconds": np99.Seconds(), "legacyP99Seconds": lp99.Seconds(),
		},
		Thresholds: map[string]float64{"minRequests": float64(g.MinRequests), "factor": g.Factor, "alpha": g.Alpha, "maxP99Seconds": g.MaxP99.Seconds()},
	}
	if nw.Requests < g.MinRequests || !nok {
		r.Verdict, r.Detail = Inconclusive, fmt.Sprintf("%d of %d new requests", nw.Requests, g.MinRequests)
		return r
	}
	if g.MaxP99 > 0 && np99 > g.MaxP99 {
		r.Verdict, r.Detail = Fail, fmt.Sprintf("new p99 %v > bound %v", np99.Round(time.Millisecond), g.MaxP99)
		return r
	}
	if leg.Requests < g.MinRequests || !lok || !sameBounds(nw.Bounds, leg.Bounds) {
		r.Verdict, r.Detail = Inconclusive, fmt.Sprintf("%d of %d legacy requests to compare with", leg.Requests, g.MinRequests)
		return r
	}
	mw := stats.MannWhitneyBinned(nw.Buckets, leg.Buckets)
	r.Measured["pValue"] = mw.P
	if float64(np99) > g.Factor*float64(lp99) && mw.P < g.Alpha {
		r.Verdict, r.Detail = Fail, fmt.Sprintf("new p99 %v > %.2g x legacy p99 %v (Mann-Whitney p = %.2g < %g)", np99.Round(time.Millisecond), g.Factor, lp99.Round(time.Millisecond), mw.P, g.Alpha)
		return r
	}
	r.Verdict, r.Detail = Pass, fmt.Sprintf("new p99 %v, legacy p99 %v (Mann-Whitney p = %.2g)", np99.Round(time.Millisecond), lp99.Round(time.Millisecond), mw.P)
	return r
}

// resilienceGate: an open breaker on the new upstream or fallbacks beyond
// the allowance fail at once, whatever the volume; a pass needs volume.
func resilienceGate(g config.ResilienceGate, t Tally) GateResult {
	opened := 0.0
	if t.BreakerOpened {
		opened = 1
	}
	r := GateResult{
		Gate:       GateResilience,
		Measured:   map[string]float64{"breakerOpened": opened, "fallbacks": float64(t.Fallbacks), "newRequests": float64(t.New.Requests)},
		Thresholds: map[string]float64{"maxFallbacks": float64(g.MaxFallbacks), "minRequests": float64(g.MinRequests)},
	}
	switch {
	case t.BreakerOpened:
		r.Verdict, r.Detail = Fail, "the new upstream's circuit breaker opened"
	case t.Fallbacks > g.MaxFallbacks:
		r.Verdict, r.Detail = Fail, fmt.Sprintf("%d fallbacks to legacy > %d allowed", t.Fallbacks, g.MaxFallbacks)
	case t.New.Requests < g.MinRequests:
		r.Verdict, r.Detail = Inconclusive, fmt.Sprintf("%d of %d new requests", t.New.Requests, g.MinRequests)
	default:
		r.Verdict, r.Detail = Pass, fmt.Sprintf("breaker closed, %d fallbacks", t.Fallbacks)
	}
	return r
}

// dataGate: a reconcile run since the step began found no mismatch and the
// sync lag is within bound. A stale or missing check is inconclusive.
func dataGate(g config.DataGate, ds DataStatus, err error, stepStart time.Time) GateResult {
	r := GateResult{
		Gate:       GateData,
		Measured:   map[string]float64{"mismatches": float64(ds.Mismatches), "syncLagSeconds": ds.SyncLag.Seconds()},
		Thresholds: map[string]float64{"mismatches": 0, "maxSyncLagSeconds": g.MaxSyncLag.Seconds()},
	}
	switch {
	case err != nil:
		r.Verdict, r.Detail = Inconclusive, "data status unavailable: "+err.Error()
	case ds.CheckedAt.Before(stepStart):
		r.Verdict, r.Detail = Inconclusive, "no reconcile since the step began"
	case ds.Mismatches > 0:
		r.Verdict, r.Detail = Fail, fmt.Sprintf("reconcile found %d mismatches", ds.Mismatches)
	case ds.SyncLag > g.MaxSyncLag:
		r.Verdict, r.Detail = Fail, fmt.Sprintf("sync lag %v > %v", ds.SyncLag, g.MaxSyncLag)
	default:
		r.Verdict, r.Detail = Pass, fmt.Sprintf("reconcile clean, sync lag %v", ds.SyncLag)
	}
	return r
}

// retireGate: no legacy hit for the window, while the cohort has been on new
// for at least that long (before that, silence proves nothing).
func retireGate(g config.RetireGate, lastHit time.Time, err error, onNewSince, now time.Time) GateResult {
	quiet := now.Sub(onNewSince)
	if !lastHit.IsZero() && lastHit.After(onNewSince) {
		quiet = now.Sub(lastHit)
	}
	r := GateResult{
		Gate:       GateRetire,
		Measured:   map[string]float64{"quietSeconds": quiet.Seconds()},
		Thresholds: map[string]float64{"windowSeconds": g.Window.Seconds()},
	}
	if !lastHit.IsZero() {
		r.Measured["lastLegacyHit"] = float64(lastHit.Unix())
	}
	switch {
	case err != nil:
		r.Verdict, r.Detail = Inconclusive, "legacy usage unavailable: "+err.Error()
	case quiet < g.Window:
		r.Verdict, r.Detail = Inconclusive, fmt.Sprintf("legacy quiet for %v of %v", quiet.Round(time.Second), g.Window)
	default:
		r.Verdict, r.Detail = Pass, fmt.Sprintf("no legacy hit for %v", quiet.Round(time.Second))
	}
	return r
}

// stepGate: the step's minimum duration and new-side requests.
func stepGate(s config.RolloutStep, t Tally, elapsed time.Duration) GateResult {
	r := GateResult{
		Gate:       GateStep,
		Measured:   map[string]float64{"elapsedSeconds": elapsed.Seconds(), "newRequests": float64(t.New.Requests)},
		Thresholds: map[string]float64{"minDurationSeconds": s.MinDuration.Seconds(), "minRequests": float64(s.MinRequests)},
	}
	if elapsed < s.MinDuration || t.New.Requests < s.MinRequests {
		left := max(0, s.MinDuration-elapsed)
		need := uint64(0)
		if t.New.Requests < s.MinRequests {
			need = s.MinRequests - t.New.Requests
		}
		r.Verdict, r.Detail = Inconclusive, fmt.Sprintf("%v and %d new requests to go", left.Round(time.Second), need)
		return r
	}
	r.Verdict, r.Detail = Pass, fmt.Sprintf("%v and %d new requests", elapsed.Round(time.Second), t.New.Requests)
	return r
}

// firstFail returns the first failing result, or nil.
func firstFail(rs []GateResult) *GateResult {
	for i := range rs {
		if rs[i].Verdict == Fail {
			return &rs[i]
		}
	}
	return nil
}

func allPass(rs []GateResult) bool {
	for _, r := range rs {
		if r.Verdict != Pass {
			return false
		}
	}
	return true
}
