package rollout

import (
	"context"
	"errors"
	"time"
)

// Store keeps each cohort's State, versioned: the control plane implements
// it. Save must apply the state's Percent and PinnedLegacy to every route in
// State.Routes in the same versioned write, so routing and rollout progress
// never disagree.
type Store interface {
	// Load returns the cohort's state with its Version set, or
	// ErrNotFound.
	Load(ctx context.Context, cohort string) (State, error)
	// Save writes st if the stored version is still expect (0: the cohort
	// has no state yet) and returns the new version; ErrConflict if
	// someone wrote in between.
	Save(ctx context.Context, st State, expect int64) (int64, error)
}

// Errors a Store returns (wrapped or not).
var (
	ErrNotFound = errors.New("rollout: no state for this cohort")
	ErrConflict = errors.New("rollout: state changed since it was read")
)

// Auditor appends transitions to the audit log (and from there to the
// dashboards' annotations).
type Auditor interface {
	Record(ctx context.Context, r Record) error
}

// Leader says whether this replica runs fleet-wide work now. A controller
// that is not the leader reconciles nothing; the versioned write is the
// safety net when two replicas briefly both believe they lead.
type Leader interface {
	IsLeader() bool
}

// Source reads a cohort's traffic. Sample sums the given routes over every
// replica and returns what happened in the window (now-window, now]: the
// increase of each counter, per side.
type Source interface {
	Sample(ctx context.Context, routes []string, newUpstream string, window time.Duration) (Sample, error)
}

// Sample is the traffic of a window.
type Sample struct {
	// Legacy and New are each side's requests, failures (5xx and
	// timeouts) and latency histogram in the window.
	Legacy, New SideTally
	// Fallbacks from new to legacy in the window.
	Fallbacks uint64
	// BreakerOpen: the new upstream's breaker was open at some point in the
	// window.
	BreakerOpen bool
	// ShadowCompared pairs in the window, and how many had a real
	// difference (after noise cancellation and ignore rules).
	ShadowCompared, ShadowRealDiffs uint64
}

// DataChecker reports whether a write route's two data stores agree: the
// dual-run reconcile and sync (acl) implement it, wired at the edge.
type DataChecker interface {
	DataStatus(ctx context.Context, routes []string) (DataStatus, error)
}

// DataStatus is the latest reconcile and sync picture.
type DataStatus struct {
	// CheckedAt is when the reconcile ran; a result older than the step is
	// not evidence about the step.
	CheckedAt time.Time
	// Mismatches the reconcile found; 0 is clean.
	Mismatches int
	// SyncLag is how far the dual-run sync is behind.
	SyncLag time.Duration
}

// LegacyUsage says when the legacy side last served any of routes (zero:
// never, as far as the tracker knows). The retirement tracker implements
// it.
type LegacyUsage interface {
	LegacyLastHit(ctx context.Context, routes []string) (time.Time, error)
}

// Clock is the controller's time; tests pass a fake.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
