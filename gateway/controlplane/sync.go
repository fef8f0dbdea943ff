package controlplane

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, declared once.
const (
	MetricStateVersion = "ficus_controlplane_state_version"
	MetricConnected    = "ficus_controlplane_connected"
	MetricLastSync     = "ficus_controlplane_last_sync_timestamp_seconds"
	MetricLeader       = "ficus_controlplane_leader"
)

// SyncOptions configure a Syncer.
type SyncOptions struct {
	// Store is the control plane. Required.
	Store Store
	// Apply makes a snapshot the live state (the decision engine). It is
	// called with snapshots of strictly increasing version, never
	// concurrently. Required.
	Apply func(Snapshot)
	// Interval is the safety-net version check, for a lost notification or
	// another process sharing a SQLite file. Default 1 s.
	Interval time.Duration
	// Registry gets the ficus_controlplane_* metrics (except leader). Nil:
	// none.
	Registry prometheus.Registerer
	Logger   *slog.Logger
	// Now stamps the last-sync metric. Default time.Now.
	Now func() time.Time
}

// Syncer keeps the live state equal to the control plane's: it applies
// every newer snapshot, on a change signal or at least every Interval.
// When the store is unreachable it keeps what it last applied (routing
// never falls back to the configuration's values) and resynchronises when
// the store answers again.
type Syncer struct {
	o        SyncOptions
	mu       sync.Mutex // one sync at a time: snapshots apply in order
	current  Snapshot
	synced   bool // current came from the store
	ok       bool // the last check succeeded
	version  prometheus.Gauge
	conn     prometheus.Gauge
	lastSync prometheus.Gauge
}

// NewSyncer returns a Syncer; call Sync once before serving, then Run.
func NewSyncer(o SyncOptions) (*Syncer, error) {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Syncer{
		o: o,
		version: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricStateVersion,
			Help: "State version of the control plane this replica routes on."}),
		conn: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricConnected,
			Help: "1 while the control plane answers this replica, 0 while it routes on its last known state."}),
		lastSync: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricLastSync,
			Help: "Unix time of this replica's last successful check against the control plane."}),
	}
	if o.Registry != nil {
		for _, c := range []prometheus.Collector{s.version, s.conn, s.lastSync} {
			if err := o.Registry.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// Sync checks the store's version and applies its snapshot when newer
// than what is live (always on the first successful call). An error
// leaves the live state as it was.
func (s *Syncer) Sync(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.sync(ctx)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err // shutting down
		}
		if s.ok || !s.synced {
			s.o.Logger.Warn("control plane unreachable; routing on the last known state", "state_version", s.current.Version, "err", err)
		}
		s.ok = false
		s.conn.Set(0)
		return err
	}
	if !s.ok && s.synced {
		s.o.Logger.Info("control plane reachable again; state resynchronised", "state_version", s.current.Version)
	}
	s.ok = true
	s.conn.Set(b2f(s.o.Store.Connected()))
	s.lastSync.Set(float64(s.o.Now().UnixNano()) / 1e9)
	return nil
}

func (s *Syncer) sync(ctx context.Context) error {
	v, err := s.o.Store.Version(ctx)
	if err != nil {
		return err
	}
	if s.synced && v <= s.current.Version {
		return nil
	}
	snap, err := s.o.Store.Snapshot(ctx)
	if err != nil {
		return err
	}
	if s.synced && snap.Version <= s.current.Version {
		return nil
	}
	s.o.Apply(snap)
	if s.synced {
		s.o.Logger.Info("control plane state applied", "state_version", snap.Version, "from_version", s.current.Version)
	}
	s.current, s.synced = snap, true
	s.version.Set(float64(snap.Version))
	return nil
}

// Current returns the snapshot that is live and whether one was ever
// read from the store.
func (s *Syncer) Current() (Snapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current, s.synced
}

// Observe makes one route's state, written at version, live at once
// without waiting for the next snapshot: for a writer whose re-read
// failed. The next successful sync supersedes it.
func (s *Syncer) Observe(route string, st RouteState, version int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.current.Routes[route]; ok && cur.Version >= version {
		return
	}
	next := Snapshot{Version: s.current.Version, Routes: make(map[string]RouteState, len(s.current.Routes)+1)}
	for k, v := range s.current.Routes {
		next.Routes[k] = v
	}
	next.Routes[route] = st
	s.o.Apply(next)
	s.current = next
}

// Connected reports whether the last check reached the store.
func (s *Syncer) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok && s.o.Store.Connected()
}

// Run syncs on every change signal and every Interval until ctx ends.
func (s *Syncer) Run(ctx context.Context) error {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.o.Store.Changed():
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = s.Sync(cctx)
		cancel()
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
