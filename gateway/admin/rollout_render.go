package admin

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ficus-gw/ficus/gateway/rollout"
)

// RenderRollout writes one cohort's rollout for an operator: phase, step
// and percent, time in step, every gate's measured values against its
// thresholds with its verdict, and the next action. now ages the last
// evaluation.
func RenderRollout(w io.Writer, s RolloutStatus, now time.Time) error {
	st := s.State
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "rollout\t%s (routes: %s)\n", s.Cohort, strings.Join(s.Routes, ", "))
	fmt.Fprintf(tw, "phase\t%s\n", phaseLine(s))
	pctLine := pct(st.Percent) + " of users on new"
	if st.PinnedLegacy {
		pctLine = "0% (every user pinned to legacy)"
	}
	fmt.Fprintf(tw, "percent\t%s\n", pctLine)
	fmt.Fprintf(tw, "steps\t%s\n", stepsLine(s))
	fmt.Fprintf(tw, "time in step\t%s\n", s.TimeInStep.Round(time.Second))
	fmt.Fprintf(tw, "condition\t%s (exit status %d)\n", s.Condition, s.ExitCode)
	if st.Reason != "" {
		fmt.Fprintf(tw, "reason\t%s\n", oneLine(st.Reason))
	}
	if !st.ObservedAt.IsZero() && len(st.Gates) > 0 {
		fmt.Fprintf(tw, "evaluated\t%s ago (every %s), state version %d\n", now.Sub(st.ObservedAt).Round(time.Second), s.Interval, st.Version)
	}
	fmt.Fprintf(tw, "next\t%s\n", oneLine(s.Next))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Gates) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GATE\tVERDICT\tMEASURED\tTHRESHOLD\tDETAIL")
	for _, g := range st.Gates {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", g.Gate, strings.ToUpper(string(g.Verdict)), kv(g.Measured), kv(g.Thresholds), oneLine(g.Detail))
	}
	return tw.Flush()
}

// RenderRollouts writes one line per cohort.
func RenderRollouts(w io.Writer, ss []RolloutStatus) error {
	if len(ss) == 0 {
		_, err := fmt.Fprintln(w, "no route has a rollout plan (routes[].rollout in the config)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COHORT\tROUTES\tPHASE\tPERCENT\tTIME IN STEP\tCONDITION\tNEXT")
	for _, s := range ss {
		p := pct(s.State.Percent)
		if s.State.PinnedLegacy {
			p = "0% (pinned legacy)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Cohort, strings.Join(s.Routes, ","), phaseLine(s), p,
			s.TimeInStep.Round(time.Second), s.Condition, oneLine(s.Next))
	}
	return tw.Flush()
}

func phaseLine(s RolloutStatus) string {
	st := s.State
	ph := string(st.Phase)
	if st.Phase == rollout.PhasePaused {
		ph += " (in " + string(st.PausedFrom) + ")"
	}
	if st.Step >= 0 && st.Step < len(s.Steps) && (st.Phase == rollout.PhaseCanary || st.Phase == rollout.PhasePaused || st.Phase == rollout.PhaseRolledBack) {
		ph += fmt.Sprintf(", step %d of %d", st.Step+1, len(s.Steps))
	}
	return ph
}

// stepsLine: "5% -> [25%] -> 100%", the current step bracketed.
func stepsLine(s RolloutStatus) string {
	parts := make([]string, len(s.Steps))
	for i, p := range s.Steps {
		parts[i] = pct(p)
		if i == s.State.Step && s.State.Phase == rollout.PhaseCanary {
			parts[i] = "[" + parts[i] + "]"
		}
	}
	return strings.Join(parts, " -> ")
}

// kv renders a gate's numbers sorted by name: "compared=412 realDiffRate=0".
func kv(m map[string]float64) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+strconv.FormatFloat(m[k], 'g', 4, 64))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}
