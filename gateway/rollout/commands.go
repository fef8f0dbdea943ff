package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CommandError is an operator command the current state does not allow. Code
// is machine-readable (the admin API answers 409 with it, or 404 for
// no_plan); Message says what to do instead.
type CommandError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *CommandError) Error() string { return e.Code + ": " + e.Message }

// Command error codes.
const (
	CodeNoPlan     = "no_plan"         // the name is neither a planned cohort nor one of its routes
	CodeRunning    = "already_running" // start on a rollout in progress
	CodeNotCanary  = "not_in_canary"   // promote outside a canary step
	CodeNotRunning = "not_running"     // pause on a rollout that is not moving
	CodeNotPaused  = "not_resumable"   // resume on a rollout neither paused nor rolled back
	CodeFinished   = "finished"        // abort/start on a retired cohort
)

func cmdErr(code, format string, args ...any) error {
	return &CommandError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// command loads name's state (the initial one if never started), applies
// change, and writes it with the version read. ErrConflict when another
// writer got there first: the caller retries with fresh eyes.
func (c *Controller) command(ctx context.Context, name, actor, action string, change func(p *Plan, st State, now time.Time) (State, error)) (State, error) {
	p, ok := c.byName[name]
	if !ok {
		return State{}, cmdErr(CodeNoPlan, "%q is not a route or cohort with a rollout plan", name)
	}
	now := c.o.Clock.Now()
	st, err := c.o.Store.Load(ctx, p.Cohort)
	if errors.Is(err, ErrNotFound) {
		st, err = initial(p, now), nil
	}
	if err != nil {
		return State{}, fmt.Errorf("loading state: %w", err)
	}
	next, err := change(p, st, now)
	if err != nil {
		return st, err
	}
	rec := &Record{
		Time: now, Actor: actor, Cohort: p.Cohort, Routes: next.Routes, Action: action,
		FromPhase: st.Phase, ToPhase: next.Phase, FromPercent: st.Percent, ToPercent: next.Percent,
		Step: next.Step, Reason: next.Reason, Gates: st.Gates,
	}
	if err := c.commit(ctx, p, st, next, rec); err != nil {
		return st, err
	}
	return c.o.Store.Load(ctx, p.Cohort)
}

// Start begins (or, after a rollback, restarts from the beginning) the
// rollout of name: the shadow phase, or the first step when the plan has no
// shadow gate.
func (c *Controller) Start(ctx context.Context, name, actor, reason string) (State, error) {
	return c.command(ctx, name, actor, "start", func(p *Plan, st State, now time.Time) (State, error) {
		switch st.Phase {
		case PhaseLegacy, PhaseRolledBack:
		case PhaseRetired:
			return st, cmdErr(CodeFinished, "%s is retired", p.Cohort)
		default:
			return st, cmdErr(CodeRunning, "%s is %s; pause, resume or abort it instead", p.Cohort, st.Phase)
		}
		next := st
		next.PinnedLegacy = false
		c.resetStep(&next, now)
		next.Baseline = SideTally{}
		if p.Gates.Shadow.Disabled {
			next.Phase, next.Step, next.Percent = PhaseCanary, 0, p.Steps[0].Percent
		} else {
			next.Phase, next.Step, next.Percent = PhaseShadow, -1, 0
		}
		next.Gates = nil
		next.Reason = orDefault(reason, "started")
		return next, nil
	})
}

// Promote approves leaving the current manual step; it may be given before
// the step's gates pass, and takes effect when they do.
func (c *Controller) Promote(ctx context.Context, name, actor, reason string) (State, error) {
	return c.command(ctx, name, actor, "promote", func(p *Plan, st State, now time.Time) (State, error) {
		if st.Phase != PhaseCanary {
			return st, cmdErr(CodeNotCanary, "%s is %s; promote applies to a canary step", p.Cohort, st.Phase)
		}
		next := st
		next.Promoted = true
		next.Reason = orDefault(reason, "promoted")
		return next, nil
	})
}

// Pause freezes the rollout where it is (the percent stays); time paused
// does not count toward the step and traffic meanwhile is not judged.
func (c *Controller) Pause(ctx context.Context, name, actor, reason string) (State, error) {
	return c.command(ctx, name, actor, "pause", func(p *Plan, st State, now time.Time) (State, error) {
		switch st.Phase {
		case PhaseShadow, PhaseCanary, PhaseNew:
		default:
			return st, cmdErr(CodeNotRunning, "%s is %s; only a moving rollout can be paused", p.Cohort, st.Phase)
		}
		next := st
		next.PausedFrom, next.PausedAt, next.Phase = st.Phase, now, PhasePaused
		next.Reason = orDefault(reason, "paused")
		return next, nil
	})
}

// Resume continues a paused rollout in its step, or a rolled-back one from
// the step it was rolled back to (the first step after a rollback to
// legacy).
func (c *Controller) Resume(ctx context.Context, name, actor, reason string) (State, error) {
	return c.command(ctx, name, actor, "resume", func(p *Plan, st State, now time.Time) (State, error) {
		next := st
		switch st.Phase {
		case PhasePaused:
			next.Phase = st.PausedFrom
			next.StepStartedAt = st.StepStartedAt.Add(now.Sub(st.PausedAt))
			next.ObservedAt = now // traffic while paused is not judged
			next.PausedFrom, next.PausedAt = "", time.Time{}
		case PhaseRolledBack:
			i := max(st.Step, 0)
			next.Phase, next.Step, next.Percent, next.PinnedLegacy = PhaseCanary, i, p.Steps[i].Percent, false
			c.resetStep(&next, now)
			next.Gates = nil
		default:
			return st, cmdErr(CodeNotPaused, "%s is %s; only a paused or rolled-back rollout resumes", p.Cohort, st.Phase)
		}
		next.Reason = orDefault(reason, "resumed")
		return next, nil
	})
}

// Abort rolls the cohort back to legacy now (percent 0, users pinned to
// legacy), whatever the gates say; it stays there until an operator acts.
func (c *Controller) Abort(ctx context.Context, name, actor, reason string) (State, error) {
	return c.command(ctx, name, actor, "abort", func(p *Plan, st State, now time.Time) (State, error) {
		switch st.Phase {
		case PhaseShadow, PhaseCanary, PhaseNew, PhasePaused:
		default:
			return st, cmdErr(CodeNotRunning, "%s is %s; nothing to abort", p.Cohort, st.Phase)
		}
		next := st
		next.Phase, next.Step, next.Percent, next.PinnedLegacy = PhaseRolledBack, -1, 0, true
		next.PausedFrom, next.PausedAt = "", time.Time{}
		c.resetStep(&next, now)
		next.Reason = orDefault(reason, "aborted")
		return next, nil
	})
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
