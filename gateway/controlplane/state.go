// Package controlplane holds the gateway's live route state, shared by every
// replica of a fleet: canary percent, pin, cohort percent and the
// autopilot's rollout progress, each typed, under one monotonically
// increasing state version, with an audit log of every change.
//
// The configuration file declares the routes and their initial state; a
// value present in the control plane overrides the file's (see
// docs/configuration.md, "Control plane"). Two implementations exist: an
// embedded SQLite file (one process; the default) and PostgreSQL (a fleet;
// changes reach every replica through LISTEN/NOTIFY, with a periodic
// version check as the safety net). One contract test suite runs against
// both.
package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Store is the control plane as the gateway uses it. Implementations are
// safe for concurrent use.
type Store interface {
	// Snapshot returns every route's stored state and the state version
	// they are consistent with.
	Snapshot(ctx context.Context) (Snapshot, error)
	// Version returns the current state version; cheap enough to poll.
	Version(ctx context.Context) (int64, error)
	// Apply writes one change atomically. See Change for compare-and-set
	// and idempotency; errors are *ConflictError, ErrUnavailable or
	// ErrInvalid (match with errors.Is / errors.As).
	Apply(ctx context.Context, ch Change) (Result, error)
	// ApplyBatch writes several routes' changes in one transaction under
	// one new state version: every change's version check passes and all
	// are written, or none is (a cohort moves as one). Results are in the
	// order of chs; a route may appear once.
	ApplyBatch(ctx context.Context, chs []Change) ([]Result, error)
	// Record appends an audit entry that changes no route state (a flag
	// file reload, say). ID, At and Version are filled in.
	Record(ctx context.Context, e AuditEntry) (AuditEntry, error)
	// Audit returns entries newest first.
	Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	// Changed is signalled (coalesced, never blocking the writer) when the
	// store learns that the state may have changed: its own writes, and in
	// a fleet the other replicas' writes.
	Changed() <-chan struct{}
	// Connected reports whether the backing database answered last time.
	Connected() bool
	// Close releases the store.
	Close() error
}

// Pin values.
const (
	PinNone   = ""       // not pinned: flag and canary decide
	PinLegacy = "legacy" // every request to the legacy side
	PinNew    = "new"    // every request to the new side
)

// Field names, as they appear in audit entries.
const (
	FieldCanary        = "canaryPercent"
	FieldPin           = "pin"
	FieldCohortPercent = "cohortPercent"
	FieldRollout       = "rollout"
	FieldFlags         = "flags"
)

// RouteState is one route's state in the control plane. A nil field is not
// set here, so the configuration's value (if any) applies.
type RouteState struct {
	// Canary is the percent (0-100) of users sent to the new side.
	Canary *float64 `json:"canaryPercent,omitempty"`
	// Pin is PinLegacy or PinNew while an operator pins the route;
	// PinNone (or nil) means not pinned.
	Pin *string `json:"pin,omitempty"`
	// CohortPercent is the percent a rollout cohort has reached (the
	// autopilot moves routes sharing a cohort as one).
	CohortPercent *float64 `json:"cohortPercent,omitempty"`
	// Rollout is the autopilot's progress on this route.
	Rollout *Rollout `json:"rollout,omitempty"`
	// Version is the state version of the route's last change (0: never
	// changed).
	Version int64 `json:"version"`
	// UpdatedAt is when the route last changed.
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// Rollout is the autopilot's progress on one route. The control plane
// stores it and compares it; it gives no meaning to its fields. Schema is
// the autopilot's own version of this record, so it can migrate old ones.
type Rollout struct {
	Schema int `json:"schema"`
	// Phase: legacy, shadow, canary, new, retired, paused, rolled-back.
	Phase string `json:"phase"`
	// Step indexes the plan's canary steps.
	Step int `json:"step"`
	// StepStartedAt is when the current step began.
	StepStartedAt time.Time `json:"stepStartedAt,omitzero"`
	// Reason explains a pause or a rollback.
	Reason string `json:"reason,omitempty"`
	// Detail is anything else the autopilot keeps (JSON).
	Detail json.RawMessage `json:"detail,omitempty"`
}

// Equal reports whether r and o are the same record.
func (r *Rollout) Equal(o *Rollout) bool {
	if r == nil || o == nil {
		return r == o
	}
	a, _ := json.Marshal(r)
	b, _ := json.Marshal(o)
	return string(a) == string(b)
}

// Snapshot is the whole stored state at one version.
type Snapshot struct {
	Version int64                 `json:"version"`
	Routes  map[string]RouteState `json:"routes"`
}

// Patch names the fields a change sets; nil leaves a field as it is.
type Patch struct {
	Canary        *float64 `json:"canaryPercent,omitempty"`
	Pin           *string  `json:"pin,omitempty"`
	CohortPercent *float64 `json:"cohortPercent,omitempty"`
	Rollout       *Rollout `json:"rollout,omitempty"`
	// ClearRollout removes the rollout record (Rollout must be nil).
	ClearRollout bool `json:"clearRollout,omitempty"`
}

// Change is one write.
type Change struct {
	Route string
	Set   Patch
	// ExpectVersion, when not 0, is the state version the writer based its
	// change on: if the route has changed since (its Version is higher),
	// nothing is written and Apply returns a *ConflictError with the
	// current state. A stale version conflicts even when the change would
	// be a no-op.
	ExpectVersion int64
	// MustNotExist: conflict if the control plane holds any state for the
	// route yet (create-only, for a writer that expects nothing).
	MustNotExist bool
	// Quiet writes no audit entries: for bookkeeping a writer records
	// itself at the level an operator reads (the autopilot's per-interval
	// progress, whose transitions it records with Record).
	Quiet bool
	// Actor, Reason and RequestID go into the audit entries.
	Actor, Reason, RequestID string
	// Config holds the configuration's values for the route: what is live
	// for a field the control plane does not hold. A change compares with,
	// and audits as old, the live value, so setting the configuration's
	// value on a route without stored state is a no-op.
	Config Patch
}

// Result says what a write did.
type Result struct {
	// Changed is false when every field already had the value asked for:
	// nothing was written for this route, no audit entry (and, unless
	// another change of its batch wrote, no new version).
	Changed bool
	// State is the route's state after the write, Version the state
	// version after it.
	State   RouteState
	Version int64
	// Audit holds one entry per field that changed.
	Audit []AuditEntry
}

// AuditEntry is one recorded change of one field, with typed old and new
// values (JSON: a number for percents, a string for pins, an object for
// rollouts, null for "not set").
type AuditEntry struct {
	ID int64 `json:"id"`
	// At is when the change was committed, UTC, millisecond precision.
	At time.Time `json:"at"`
	// Version is the state version the change produced (for entries that
	// change no state: the version current when they were recorded).
	Version   int64           `json:"version"`
	Actor     string          `json:"actor"`
	Reason    string          `json:"reason"`
	RequestID string          `json:"requestId,omitempty"`
	Route     string          `json:"route,omitempty"`
	Field     string          `json:"field"`
	Old       json.RawMessage `json:"old"`
	New       json.RawMessage `json:"new"`
}

// AuditQuery selects audit entries.
type AuditQuery struct {
	Route string // "" = every route
	// From and To bound At (inclusive); zero = unbounded.
	From, To time.Time
	// Limit caps the result (1-1000; 0 means 100).
	Limit int
}

// Errors. ErrUnavailable wraps the cause; ErrConflict is matched by
// *ConflictError.
var (
	ErrUnavailable = errors.New("control plane unavailable")
	ErrConflict    = errors.New("state version conflict")
	ErrInvalid     = errors.New("invalid change")
)

// ConflictError is a compare-and-set failure: the route changed after the
// version the writer expected.
type ConflictError struct {
	Route    string
	Expected int64
	// Current is the route's state now; Version the state version now.
	Current RouteState
	Version int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("route %q changed at version %d, after the expected version %d", e.Route, e.Current.Version, e.Expected)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// unavailable wraps a database error as ErrUnavailable.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

func validate(ch Change) error {
	if ch.Route == "" {
		return fmt.Errorf("%w: route is required", ErrInvalid)
	}
	if ch.Actor == "" {
		return fmt.Errorf("%w: actor is required", ErrInvalid)
	}
	okPct := func(p *float64) bool { return p == nil || (!math.IsNaN(*p) && *p >= 0 && *p <= 100) }
	if !okPct(ch.Set.Canary) || !okPct(ch.Set.CohortPercent) {
		return fmt.Errorf("%w: percent must be between 0 and 100", ErrInvalid)
	}
	if p := ch.Set.Pin; p != nil && *p != PinNone && *p != PinLegacy && *p != PinNew {
		return fmt.Errorf("%w: pin must be %q, %q or %q (got %q)", ErrInvalid, PinNone, PinLegacy, PinNew, *p)
	}
	if ch.Set.ClearRollout && ch.Set.Rollout != nil {
		return fmt.Errorf("%w: set rollout or clear it, not both", ErrInvalid)
	}
	return nil
}

// fieldChange is one field that a patch changes.
type fieldChange struct {
	field    string
	old, new json.RawMessage
}

// merge applies p to cur and returns the new state and the fields that
// actually changed. An unpin of a route that was never pinned, or a value
// equal to the stored one, changes nothing.
func merge(stored RouteState, p, config Patch) (RouteState, []fieldChange) {
	next := stored
	cur := stored // the live values: stored, else the configuration's
	if cur.Canary == nil {
		cur.Canary = config.Canary
	}
	if cur.Pin == nil {
		cur.Pin = config.Pin
	}
	if cur.CohortPercent == nil {
		cur.CohortPercent = config.CohortPercent
	}
	var out []fieldChange
	add := func(field string, old, new any) {
		out = append(out, fieldChange{field: field, old: mustJSON(old), new: mustJSON(new)})
	}
	if p.Canary != nil && (cur.Canary == nil || *cur.Canary != *p.Canary) {
		add(FieldCanary, cur.Canary, p.Canary)
		next.Canary = ptr(*p.Canary)
	}
	if p.Pin != nil && pinOf(cur.Pin) != *p.Pin {
		add(FieldPin, pinOf(cur.Pin), *p.Pin)
		next.Pin = ptr(*p.Pin)
	}
	if p.CohortPercent != nil && (cur.CohortPercent == nil || *cur.CohortPercent != *p.CohortPercent) {
		add(FieldCohortPercent, cur.CohortPercent, p.CohortPercent)
		next.CohortPercent = ptr(*p.CohortPercent)
	}
	if p.Rollout != nil && !cur.Rollout.Equal(p.Rollout) {
		r := *p.Rollout
		r.StepStartedAt = r.StepStartedAt.UTC()
		add(FieldRollout, cur.Rollout, &r)
		next.Rollout = &r
	}
	if p.ClearRollout && cur.Rollout != nil {
		add(FieldRollout, cur.Rollout, nil)
		next.Rollout = nil
	}
	return next, out
}

func pinOf(p *string) string {
	if p == nil {
		return PinNone
	}
	return *p
}

func ptr[T any](v T) *T { return &v }

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// PinValue returns the route's pin, PinNone when not set.
func (s RouteState) PinValue() string { return pinOf(s.Pin) }

func limitOf(q AuditQuery) int {
	switch {
	case q.Limit <= 0:
		return 100
	case q.Limit > 1000:
		return 1000
	}
	return q.Limit
}

// encodeRollout / decodeRollout store a rollout as JSON text (nil: NULL).
func encodeRollout(r *Rollout) (*string, error) {
	if r == nil {
		return nil, nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding rollout: %w", err)
	}
	s := string(b)
	return &s, nil
}

func decodeRollout(s *string) (*Rollout, error) {
	if s == nil {
		return nil, nil
	}
	var r Rollout
	if err := json.Unmarshal([]byte(*s), &r); err != nil {
		return nil, fmt.Errorf("decoding rollout: %w", err)
	}
	return &r, nil
}

// notifier coalesces change signals into a 1-buffered channel.
type notifier chan struct{}

func newNotifier() notifier { return make(notifier, 1) }

func (n notifier) signal() {
	select {
	case n <- struct{}{}:
	default:
	}
}
