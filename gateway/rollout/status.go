package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Condition summarises a rollout for an operator or a script.
type Condition string

// Conditions, each with its own exit status for `ficus ctl rollout status`
// (see ExitCode).
const (
	CondProgressing Condition = "progressing" // moving; no gate failing, nothing to approve
	CondWaiting     Condition = "waiting"     // held: a manual promote, or a blocking gate (shadow, data)
	CondPaused      Condition = "paused"
	CondRolledBack  Condition = "rolled-back"
	CondDone        Condition = "done"        // on new, or retired
	CondIdle        Condition = "not-started" // on legacy; nobody started it
)

// ExitCode is the exit status the CLI uses for each condition: 0
// progressing or done, 2 waiting, 3 paused, 4 rolled back, 5 not started.
// (1 stays "the command itself failed".)
func (c Condition) ExitCode() int {
	switch c {
	case CondProgressing, CondDone:
		return 0
	case CondWaiting:
		return 2
	case CondPaused:
		return 3
	case CondRolledBack:
		return 4
	default:
		return 5
	}
}

// Status is a cohort's rollout as an operator sees it.
type Status struct {
	State State `json:"state"`
	// Steps are the plan's percents.
	Steps []float64 `json:"steps"`
	// TimeInStep counts active time (pauses excluded).
	TimeInStep time.Duration `json:"timeInStepNanos"`
	Condition  Condition     `json:"condition"`
	// Next says what happens next and what it waits for.
	Next string `json:"next"`
}

// Status returns name's rollout status; name is a cohort or one of its
// routes.
func (c *Controller) Status(ctx context.Context, name string) (Status, error) {
	p, ok := c.byName[name]
	if !ok {
		return Status{}, cmdErr(CodeNoPlan, "%q is not a route or cohort with a rollout plan", name)
	}
	now := c.o.Clock.Now()
	st, err := c.o.Store.Load(ctx, p.Cohort)
	if errors.Is(err, ErrNotFound) {
		st, err = initial(p, now), nil
	}
	if err != nil {
		return Status{}, fmt.Errorf("loading state: %w", err)
	}
	s := Status{State: st, TimeInStep: now.Sub(st.StepStartedAt)}
	if st.Phase == PhasePaused {
		s.TimeInStep = st.PausedAt.Sub(st.StepStartedAt)
	}
	for _, x := range p.Steps {
		s.Steps = append(s.Steps, x.Percent)
	}
	s.Condition, s.Next = describe(p, st)
	return s, nil
}

// describe derives the condition and the next action from a state.
func describe(p *Plan, st State) (Condition, string) {
	switch st.Phase {
	case PhaseLegacy:
		return CondIdle, "an operator starts it: ficus ctl rollout start " + p.Cohort
	case PhaseRetired:
		return CondDone, "nothing: the legacy side may be deleted"
	case PhaseNew:
		for _, g := range st.Gates {
			if g.Gate == GateRetire {
				return CondDone, "retire when " + g.Detail
			}
		}
		return CondDone, "stay on new (no retirement data)"
	case PhasePaused:
		return CondPaused, fmt.Sprintf("an operator resumes it (paused in %s: %s)", st.PausedFrom, st.Reason)
	case PhaseRolledBack:
		return CondRolledBack, "an operator acts (resume, or start again): " + st.Reason
	}
	var waits []string
	cond := CondProgressing
	for _, g := range st.Gates {
		switch {
		case g.Gate == GateManual && g.Verdict != Pass:
			cond = CondWaiting
			waits = append(waits, "promote")
		case (g.Gate == GateData || st.Phase == PhaseShadow) && g.Verdict == Fail:
			cond = CondWaiting
			waits = append(waits, g.Gate+": "+g.Detail)
		case g.Verdict != Pass:
			waits = append(waits, g.Gate+": "+g.Detail)
		}
	}
	if st.Phase == PhaseShadow && st.Reason != "" && len(waits) == 0 {
		waits = append(waits, st.Reason)
	}
	target := "canary " + fmt.Sprint(p.Steps[0].Percent) + "%"
	if st.Phase == PhaseCanary {
		if st.Step+1 < len(p.Steps) {
			target = fmt.Sprint(p.Steps[st.Step+1].Percent) + "%"
		} else {
			target = "new"
		}
	}
	if len(waits) == 0 {
		return cond, "advance to " + target + " at the next evaluation"
	}
	return cond, fmt.Sprintf("advance to %s after %v", target, waits)
}
