package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
	// Cache, when set, is a file that keeps a copy of every snapshot read
	// from the store, so that a replica started while the store is
	// unreachable can route on its last known state (RestoreCache).
	Cache string
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
		// Debug: a running rollout writes its progress every interval; the
		// changes that matter (canary, pin, phase) are logged where made.
		s.o.Logger.Debug("control plane state applied", "state_version", snap.Version, "from_version", s.current.Version)
	}
	s.current, s.synced = snap, true
	s.version.Set(float64(snap.Version))
	if s.o.Cache != "" {
		if err := writeCache(s.o.Cache, snap, s.o.Now()); err != nil {
			// Routing is unaffected; only a restart during an outage would be.
			s.o.Logger.Warn("could not keep a copy of the control plane state", "cache", s.o.Cache, "err", err)
		}
	}
	return nil
}

// cacheFile is the on-disk copy of the last snapshot read from the store.
type cacheFile struct {
	SavedAt  time.Time `json:"savedAt"`
	Snapshot Snapshot  `json:"snapshot"`
}

// writeCache replaces path atomically (a temporary file renamed over it),
// so a crash never leaves half a state behind.
func writeCache(path string, snap Snapshot, now time.Time) error {
	b, err := json.Marshal(cacheFile{SavedAt: now.UTC(), Snapshot: snap})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename there is nothing left to remove
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ErrNoCache: no usable copy of an earlier state exists.
var ErrNoCache = errors.New("no cached control plane state")

// HasCache reports whether path holds a readable copy of an earlier state.
func HasCache(path string) bool {
	_, _, err := readCache(path)
	return err == nil
}

func readCache(path string) (Snapshot, time.Time, error) {
	if path == "" {
		return Snapshot{}, time.Time{}, ErrNoCache
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Snapshot{}, time.Time{}, fmt.Errorf("%w: %w", ErrNoCache, err)
	}
	var c cacheFile
	if err := json.Unmarshal(b, &c); err != nil || c.Snapshot.Routes == nil {
		return Snapshot{}, time.Time{}, fmt.Errorf("%w: %s is not a state copy", ErrNoCache, path)
	}
	return c.Snapshot, c.SavedAt, nil
}

// RestoreCache makes the cached copy of the last state live, for a replica
// that starts while the store is unreachable: it routes as the fleet did
// when the copy was saved, never on the configuration's values. The next
// successful Sync replaces it with the store's state, whatever its version.
func (s *Syncer) RestoreCache() (Snapshot, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, at, err := readCache(s.o.Cache)
	if err != nil {
		return Snapshot{}, time.Time{}, err
	}
	s.o.Apply(snap)
	s.current = snap // synced stays false: the store's first answer wins
	s.version.Set(float64(snap.Version))
	s.conn.Set(0)
	return snap, at, nil
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
