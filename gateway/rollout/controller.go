package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Options build a Controller. Store, Audit and Source are required.
type Options struct {
	Plans  []Plan
	Store  Store
	Audit  Auditor
	Source Source
	// Leader gates the reconcile loop; nil: this process always leads (a
	// single gateway).
	Leader Leader
	// Data answers the data gate; nil: a plan with the data gate enabled
	// waits (inconclusive) forever, which is what an unwired gate should do.
	Data DataChecker
	// Legacy answers the retirement gate; nil: cohorts stay on new.
	Legacy LegacyUsage
	// Clock defaults to the system clock.
	Clock Clock
	// Metrics may be nil.
	Metrics *Metrics
	Log     *slog.Logger
}

// Controller runs the rollouts of every planned cohort.
type Controller struct {
	o       Options
	byName  map[string]*Plan // cohort and route names -> plan
	cohorts []*Plan
}

// New checks the options and returns a Controller.
func New(o Options) (*Controller, error) {
	if o.Store == nil || o.Audit == nil || o.Source == nil {
		return nil, errors.New("rollout: Store, Audit and Source are required")
	}
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	c := &Controller{o: o, byName: map[string]*Plan{}}
	for i := range o.Plans {
		p := &o.Plans[i]
		if len(p.Steps) == 0 || p.Interval <= 0 {
			return nil, fmt.Errorf("rollout: plan %q needs steps and an interval (apply config defaults)", p.Cohort)
		}
		c.cohorts = append(c.cohorts, p)
		c.byName[p.Cohort] = p
		o.Metrics.declare(p.Routes)
		for _, r := range p.Routes {
			c.byName[r] = p
		}
	}
	return c, nil
}

// Plan returns the plan of a cohort or of one of its routes.
func (c *Controller) Plan(name string) (Plan, bool) {
	p, ok := c.byName[name]
	if !ok {
		return Plan{}, false
	}
	return *p, true
}

// Run reconciles every tick until ctx ends. tick is how often it wakes; a
// cohort is evaluated only once its plan's interval has passed since its
// last evaluation.
func (c *Controller) Run(ctx context.Context, tick time.Duration) error {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.Reconcile(ctx)
		}
	}
}

// Reconcile evaluates every cohort that is due, once, if this replica
// leads. Errors are logged per cohort and retried next time: one cohort's
// failure never holds up another.
func (c *Controller) Reconcile(ctx context.Context) {
	if c.o.Leader != nil && !c.o.Leader.IsLeader() {
		// A follower decides nothing but still exports each cohort's
		// phase and percent from the shared state, so every replica's
		// gauges agree with the leader's.
		for _, p := range c.cohorts {
			if st, err := c.o.Store.Load(ctx, p.Cohort); err == nil {
				c.observe(p, st)
			}
		}
		return
	}
	for _, p := range c.cohorts {
		if err := c.reconcile(ctx, p); err != nil {
			if errors.Is(err, ErrConflict) {
				c.o.Log.Debug("rollout state changed under the controller; retrying next interval", "cohort", p.Cohort)
				continue
			}
			c.o.Log.Warn("rollout reconcile failed", "cohort", p.Cohort, "err", err)
		}
	}
}

// reconcile is one pass over one cohort: read, decide one step, write with
// the version read.
func (c *Controller) reconcile(ctx context.Context, p *Plan) error {
	st, err := c.o.Store.Load(ctx, p.Cohort)
	if errors.Is(err, ErrNotFound) {
		c.observe(p, initial(p, c.o.Clock.Now()))
		return nil // never started: nothing to do until an operator starts it
	}
	if err != nil {
		return fmt.Errorf("loading state: %w", err)
	}
	now := c.o.Clock.Now()
	switch st.Phase {
	case PhaseShadow, PhaseCanary, PhaseNew:
	default: // legacy, retired, paused, rolled-back: only an operator moves it
		c.observe(p, st)
		return nil
	}
	if now.Sub(st.ObservedAt) < p.Interval {
		return nil
	}
	next, rec, err := c.decide(ctx, p, st, now)
	if err != nil {
		return err
	}
	c.o.Metrics.checked(p.Routes, next.Gates)
	return c.commit(ctx, p, st, next, rec)
}

// commit writes next with the version st was read at, then audits.
func (c *Controller) commit(ctx context.Context, p *Plan, st, next State, rec *Record) error {
	next.UpdatedAt = c.o.Clock.Now()
	v, err := c.o.Store.Save(ctx, next, st.Version)
	if err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	next.Version = v
	c.observe(p, next)
	if rec == nil {
		return nil
	}
	c.o.Log.Info("rollout moved", "cohort", p.Cohort, "actor", rec.Actor, "action", rec.Action,
		"from", rec.FromPhase, "to", rec.ToPhase, "percent", rec.ToPercent, "gate", rec.Gate, "reason", rec.Reason)
	if err := c.o.Audit.Record(ctx, *rec); err != nil {
		// The move is made and stays made; a missing audit line is loud.
		c.o.Log.Error("rollout audit record lost", "cohort", p.Cohort, "action", rec.Action, "err", err)
	}
	return nil
}

// initial is the state of a cohort nobody started.
func initial(p *Plan, now time.Time) State {
	return State{Cohort: p.Cohort, Routes: slices.Clone(p.Routes), Phase: PhaseLegacy, Step: -1, StepStartedAt: now, ObservedAt: now}
}

// decide takes one step from st: accumulate the window's traffic, judge the
// gates, and move at most once. It returns the state to write and the audit
// record of a transition (nil when the cohort stays where it is).
func (c *Controller) decide(ctx context.Context, p *Plan, st State, now time.Time) (State, *Record, error) {
	next := st
	next.Routes = slices.Clone(p.Routes)
	next.Tally.Legacy.Bounds = slices.Clone(st.Tally.Legacy.Bounds)
	next.Tally.Legacy.Buckets = slices.Clone(st.Tally.Legacy.Buckets)
	next.Tally.New.Bounds = slices.Clone(st.Tally.New.Bounds)
	next.Tally.New.Buckets = slices.Clone(st.Tally.New.Buckets)
	if st.Phase != PhaseNew {
		s, err := c.o.Source.Sample(ctx, p.Routes, p.NewUpstream, now.Sub(st.ObservedAt))
		if err != nil {
			return st, nil, fmt.Errorf("reading metrics: %w", err)
		}
		next.Tally.add(s)
	}
	next.ObservedAt = now
	next.Gates = nil
	elapsed := now.Sub(st.StepStartedAt)

	switch st.Phase {
	case PhaseShadow:
		g := shadowGate(p.Gates.Shadow, next.Tally)
		next.Gates = []GateResult{g}
		switch {
		case g.Verdict == Fail:
			// Before any user moves a difference blocks, it does not roll
			// back: the window restarts, so a fix (or an owned ignore
			// rule) is judged on fresh pairs only.
			next.Tally = Tally{}
			next.Reason = "shadow gate blocked: " + g.Detail
		case g.Verdict == Pass && elapsed >= p.Gates.Shadow.MinDuration:
			return c.enterStep(p, next, 0, now, ActorAutopilot, "advance", "shadow gate passed: "+g.Detail)
		}
		return next, nil, nil

	case PhaseCanary:
		rs := c.guards(p, next)
		if f := firstFail(rs); f != nil {
			next.Gates = rs
			return c.rollback(p, next, now, f)
		}
		step := p.Steps[st.Step]
		rs = append(rs, stepGate(step, next.Tally, elapsed))
		if p.Gates.Data.Enabled {
			var ds DataStatus
			err := errors.New("no data checker wired")
			if c.o.Data != nil {
				ds, err = c.o.Data.DataStatus(ctx, p.Routes)
			}
			rs = append(rs, dataGate(p.Gates.Data, ds, err, st.StepStartedAt))
		}
		if step.Manual {
			m := GateResult{Gate: GateManual, Verdict: Inconclusive, Detail: "waiting for an operator's promote",
				Measured: map[string]float64{}, Thresholds: map[string]float64{}}
			if st.Promoted {
				m.Verdict, m.Detail = Pass, "promoted"
			}
			rs = append(rs, m)
		}
		next.Gates = rs
		if !allPass(rs) {
			next.Reason = ""
			return next, nil, nil
		}
		if st.Step+1 < len(p.Steps) {
			return c.enterStep(p, next, st.Step+1, now, ActorAutopilot, "advance", "every gate passed")
		}
		return c.transition(p, next, func(s *State) {
			s.Phase, s.Percent, s.Step = PhaseNew, 100, len(p.Steps)-1
			c.resetStep(s, now)
		}, now, ActorAutopilot, "advance", "", "every gate passed at the last step")

	case PhaseNew:
		if c.o.Legacy == nil {
			return next, nil, nil
		}
		last, err := c.o.Legacy.LegacyLastHit(ctx, p.Routes)
		g := retireGate(p.Gates.Retire, last, err, st.StepStartedAt, now)
		next.Gates = []GateResult{g}
		if g.Verdict != Pass {
			return next, nil, nil
		}
		return c.transition(p, next, func(s *State) { s.Phase = PhaseRetired }, now, ActorAutopilot, "retire", "", "retirement gate passed: "+g.Detail)
	}
	return next, nil, nil
}

// guards are the gates whose failure rolls a canary step back.
func (c *Controller) guards(p *Plan, st State) []GateResult {
	var rs []GateResult
	if !p.Gates.Shadow.Disabled {
		rs = append(rs, shadowGate(p.Gates.Shadow, st.Tally))
	}
	rs = append(rs,
		errorGate(p.Gates.Errors, st.Tally, st.Baseline),
		latencyGate(p.Gates.Latency, st.Tally, st.Baseline),
		resilienceGate(p.Gates.Resilience, st.Tally))
	return rs
}

// rollback moves a canary that failed gate f to where the plan says, and
// leaves it there for an operator.
func (c *Controller) rollback(p *Plan, st State, now time.Time, f *GateResult) (State, *Record, error) {
	failed := st.Step
	next, rec, err := c.transition(p, st, func(s *State) {
		s.Phase = PhaseRolledBack
		if p.Rollback == "previous" && s.Step > 0 {
			s.Step--
			s.Percent = p.Steps[s.Step].Percent
		} else {
			s.Step, s.Percent, s.PinnedLegacy = -1, 0, true
		}
		c.resetStep(s, now)
	}, now, ActorAutopilot, "rollback", f.Gate, fmt.Sprintf("gate %s failed at step %d (%v%%): %s", f.Gate, failed, p.Steps[failed].Percent, f.Detail))
	if rec != nil {
		c.o.Metrics.rollback(p.Routes, f.Gate)
	}
	return next, rec, err
}

// enterStep moves to canary step i.
func (c *Controller) enterStep(p *Plan, st State, i int, now time.Time, actor, action, reason string) (State, *Record, error) {
	return c.transition(p, st, func(s *State) {
		s.Phase, s.Step, s.Percent, s.PinnedLegacy = PhaseCanary, i, p.Steps[i].Percent, false
		c.resetStep(s, now)
	}, now, actor, action, "", reason)
}

// resetStep starts a new step: fresh tally, the finished step's legacy
// traffic kept as the rollout's baseline.
func (c *Controller) resetStep(s *State, now time.Time) {
	s.Baseline.add(s.Tally.Legacy)
	s.Tally = Tally{}
	s.StepStartedAt, s.ObservedAt = now, now
	s.Promoted = false
}

// transition applies move to st and returns the new state and its record.
func (c *Controller) transition(p *Plan, st State, move func(*State), now time.Time, actor, action, gate, reason string) (State, *Record, error) {
	next := st
	move(&next)
	next.Reason = reason
	rec := &Record{
		Time: now, Actor: actor, Cohort: p.Cohort, Routes: slices.Clone(p.Routes), Action: action,
		FromPhase: st.Phase, ToPhase: next.Phase, FromPercent: st.Percent, ToPercent: next.Percent,
		Step: next.Step, Gate: gate, Reason: reason, Gates: st.Gates,
	}
	return next, rec, nil
}

// Cohorts returns the planned cohorts' names in configuration order.
func (c *Controller) Cohorts() []string {
	out := make([]string, 0, len(c.cohorts))
	for _, p := range c.cohorts {
		out = append(out, p.Cohort)
	}
	return out
}
