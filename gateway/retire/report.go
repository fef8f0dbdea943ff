package retire

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"
)

// Caller is one caller of a route's legacy side.
type Caller struct {
	ID       string    `json:"id"`
	Hits     uint64    `json:"hits"`
	LastSeen time.Time `json:"lastSeen"`
}

// RouteReport is one route's retirement evidence.
type RouteReport struct {
	Route string `json:"route"`
	// Status is StatusReady, StatusInUse or StatusObserving.
	Status string `json:"status"`
	// LastLegacyHit is nil when the legacy side never served the route
	// since tracking began.
	LastLegacyHit *time.Time `json:"lastLegacyHit,omitempty"`
	// Callers within the window, most recent first.
	Callers []Caller `json:"callers"`
}

// Report is the retirement report at one moment.
type Report struct {
	GeneratedAt   time.Time     `json:"generatedAt"`
	Window        string        `json:"window"`
	TrackingSince time.Time     `json:"trackingSince"`
	Routes        []RouteReport `json:"routes"`
}

// Report classifies every route over window (0: the configured window):
// ready to delete when its legacy side served nothing for the whole window,
// in use (with the callers seen in the window) otherwise. Routes ready to
// delete come first.
func (t *Tracker) Report(window time.Duration) Report {
	if window <= 0 {
		window = t.cfg.Window
	}
	now := t.now()
	cut := now.Add(-window).UnixNano()
	rep := Report{GeneratedAt: now.UTC(), Window: window.String(), TrackingSince: t.since}
	for _, rs := range t.routes {
		rr := RouteReport{Route: rs.name, Callers: []Caller{}}
		last := rs.last.Load()
		if last > 0 {
			lt := time.Unix(0, last).UTC()
			rr.LastLegacyHit = &lt
		}
		switch {
		case last > cut:
			rr.Status = StatusInUse
		case t.since.UnixNano() > cut:
			rr.Status = StatusObserving
		default:
			rr.Status = StatusReady
		}
		for id, cs := range *rs.callers.Load() {
			if last := cs.last.Load(); last > cut {
				rr.Callers = append(rr.Callers, Caller{ID: id, Hits: cs.hits.Load(), LastSeen: time.Unix(0, last).UTC()})
			}
		}
		sort.Slice(rr.Callers, func(i, j int) bool {
			if !rr.Callers[i].LastSeen.Equal(rr.Callers[j].LastSeen) {
				return rr.Callers[i].LastSeen.After(rr.Callers[j].LastSeen)
			}
			return rr.Callers[i].ID < rr.Callers[j].ID
		})
		rep.Routes = append(rep.Routes, rr)
	}
	rank := map[string]int{StatusReady: 0, StatusObserving: 1, StatusInUse: 2}
	sort.SliceStable(rep.Routes, func(i, j int) bool {
		return rank[rep.Routes[i].Status] < rank[rep.Routes[j].Status]
	})
	return rep
}

// Flush writes every route changed since the last flush to the database in
// one transaction.
func (t *Tracker) Flush(ctx context.Context) error {
	type callerRow struct {
		caller string
		add    uint64
		last   int64
	}
	type routeRow struct {
		name    string
		last    int64
		callers []callerRow
	}
	var rows []routeRow
	for _, rs := range t.routes {
		if !rs.dirty.Swap(false) {
			continue
		}
		rr := routeRow{name: rs.name, last: rs.last.Load()}
		rs.mu.Lock()
		for id, cs := range *rs.callers.Load() {
			if hits := cs.hits.Load(); hits > cs.flushed {
				rr.callers = append(rr.callers, callerRow{id, hits - cs.flushed, cs.last.Load()})
				cs.flushed = hits
			}
		}
		rs.mu.Unlock()
		rows = append(rows, rr)
	}
	if len(rows) == 0 {
		return nil
	}
	err := t.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, r := range rows {
			if _, err := tx.ExecContext(ctx, `INSERT INTO route_hits(route, last_unix_ns) VALUES (?, ?)
				ON CONFLICT(route) DO UPDATE SET last_unix_ns = max(last_unix_ns, excluded.last_unix_ns)`, r.name, r.last); err != nil {
				return err
			}
			for _, c := range r.callers {
				if _, err := tx.ExecContext(ctx, `INSERT INTO caller_hits(route, caller, hits, last_unix_ns) VALUES (?, ?, ?, ?)
					ON CONFLICT(route, caller) DO UPDATE SET hits = hits + excluded.hits, last_unix_ns = max(last_unix_ns, excluded.last_unix_ns)`,
					r.name, c.caller, c.add, c.last); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		// Put the counts back so that the next flush retries them.
		for _, r := range rows {
			rs := t.byName[r.name]
			rs.dirty.Store(true)
			rs.mu.Lock()
			for _, c := range r.callers {
				if cs := (*rs.callers.Load())[c.caller]; cs != nil {
					cs.flushed -= c.add
				}
			}
			rs.mu.Unlock()
		}
		return fmt.Errorf("flushing retirement hits: %w", err)
	}
	return nil
}

// Run flushes every FlushInterval until ctx ends, then flushes once more.
func (t *Tracker) Run(ctx context.Context) error {
	every := t.cfg.FlushInterval
	if every <= 0 {
		every = 10 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return t.Flush(fctx)
		case <-tick.C:
			if err := t.Flush(ctx); err != nil {
				t.log.Warn("retirement tracker could not save hits; will retry", "err", err)
			}
		}
	}
}
