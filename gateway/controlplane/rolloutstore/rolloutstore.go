// Package rolloutstore keeps the autopilot's rollout state (gateway/rollout)
// in the control plane, so that every replica routes on it, it survives
// restarts, and exactly the leader moves it.
//
// Each cohort's whole rollout.State is stored as the rollout record of a
// control plane entry named "cohort:<name>" (route names cannot contain a
// colon). Save writes that record and, in the same versioned write, each of
// the cohort's routes: canary percent and cohort percent (the state's
// Percent), a rollout summary (phase, step, step start, reason), and the pin
// to legacy while the state says PinnedLegacy.
package rolloutstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ficus-gw/ficus/gateway/controlplane"
	"github.com/ficus-gw/ficus/gateway/rollout"
)

// Schema is the version of the records this package writes.
const Schema = 1

// Store implements rollout.Store and rollout.Auditor over a control plane.
type Store struct {
	cp controlplane.Store
}

var (
	_ rollout.Store   = (*Store)(nil)
	_ rollout.Auditor = (*Store)(nil)
)

// New returns a Store over cp.
func New(cp controlplane.Store) *Store { return &Store{cp: cp} }

// Key is the control plane entry holding cohort's state.
func Key(cohort string) string { return "cohort:" + cohort }

// Load returns the cohort's state with Version set, or rollout.ErrNotFound.
func (s *Store) Load(ctx context.Context, cohort string) (rollout.State, error) {
	snap, err := s.cp.Snapshot(ctx)
	if err != nil {
		return rollout.State{}, err
	}
	return decode(snap, cohort)
}

func decode(snap controlplane.Snapshot, cohort string) (rollout.State, error) {
	rs, ok := snap.Routes[Key(cohort)]
	if !ok || rs.Rollout == nil || len(rs.Rollout.Detail) == 0 {
		return rollout.State{}, rollout.ErrNotFound
	}
	var st rollout.State
	if err := json.Unmarshal(rs.Rollout.Detail, &st); err != nil {
		return rollout.State{}, fmt.Errorf("rollout state of cohort %q: %w", cohort, err)
	}
	st.Version = rs.Version
	return st, nil
}

// Save writes st if the cohort's stored version is still expect (0: no
// state yet), together with its routes' percent and pin, and returns the
// new version; rollout.ErrConflict if someone wrote in between.
func (s *Store) Save(ctx context.Context, st rollout.State, expect int64) (int64, error) {
	snap, err := s.cp.Snapshot(ctx)
	if err != nil {
		return 0, err
	}
	prev, perr := decode(snap, st.Cohort)
	hadState := perr == nil
	st.Version = 0 // the store's version is the row's, not a copy inside it
	detail, err := json.Marshal(st)
	if err != nil {
		return 0, fmt.Errorf("encoding rollout state: %w", err)
	}
	summary := controlplane.Rollout{Schema: Schema, Phase: string(st.Phase), Step: st.Step, StepStartedAt: st.StepStartedAt, Reason: st.Reason}
	full := summary
	full.Detail = detail
	reason := st.Reason
	if reason == "" {
		reason = fmt.Sprintf("rollout %s, step %d", st.Phase, st.Step)
	}
	chs := []controlplane.Change{{
		Route: Key(st.Cohort), Set: controlplane.Patch{Rollout: &full},
		ExpectVersion: expect, MustNotExist: expect == 0, Quiet: true,
		Actor: rollout.ActorAutopilot, Reason: reason,
	}}
	pct := st.Percent
	for _, r := range st.Routes {
		rsum := summary
		set := controlplane.Patch{Canary: &pct, CohortPercent: &pct, Rollout: &rsum}
		switch {
		case st.PinnedLegacy:
			set.Pin = ptr(controlplane.PinLegacy)
		case hadState && prev.PinnedLegacy:
			set.Pin = ptr(controlplane.PinNone) // the autopilot's own pin, lifted
		}
		chs = append(chs, controlplane.Change{Route: r, Set: set, Actor: rollout.ActorAutopilot, Reason: reason})
	}
	rs, err := s.cp.ApplyBatch(ctx, chs)
	if errors.Is(err, controlplane.ErrConflict) {
		return 0, fmt.Errorf("%w: %w", rollout.ErrConflict, err)
	}
	if err != nil {
		return 0, err
	}
	return rs[0].State.Version, nil
}

// Record appends a rollout transition to the audit log: field "rollout"
// on the cohort, the actor (autopilot or the operator), the phases and
// percents, the failing gate and every gate's verdict.
func (s *Store) Record(ctx context.Context, r rollout.Record) error {
	old, _ := json.Marshal(map[string]any{"phase": r.FromPhase, "percent": r.FromPercent})
	nw, _ := json.Marshal(map[string]any{"phase": r.ToPhase, "percent": r.ToPercent, "step": r.Step,
		"action": r.Action, "gate": r.Gate, "routes": r.Routes, "gates": r.Gates})
	reason := r.Reason
	if reason == "" {
		reason = r.Action
	}
	_, err := s.cp.Record(ctx, controlplane.AuditEntry{
		Actor: r.Actor, Route: r.Cohort, Field: controlplane.FieldRollout + ":" + strings.ToLower(r.Action),
		Old: old, New: nw, Reason: reason,
	})
	return err
}

func ptr[T any](v T) *T { return &v }
