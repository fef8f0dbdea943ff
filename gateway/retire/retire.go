// Package retire tracks, per route, when its legacy side last served a
// request and which callers it served, so that the last step of a
// strangler migration — deleting legacy code — rests on evidence that
// nobody still calls it.
//
// The hot path (Hit) touches one route's state: an atomic last-hit stamp and
// a small bounded caller table under that route's own mutex. State is kept
// in memory and flushed to SQLite every FlushInterval, so a restart keeps
// the history (a retirement window is days long, far longer than a process
// may live).
package retire

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// MetricLastHit is the Unix time of each route's last legacy hit.
const MetricLastHit = "ficus_legacy_route_last_hit_timestamp_seconds"

// OtherCallers is the caller that stands for every caller beyond MaxCallers.
const OtherCallers = "(other)"

// Status of a route in a Report.
const (
	// StatusReady: the legacy side served nothing for the whole window.
	StatusReady = "ready-to-delete"
	// StatusInUse: the legacy side served a request within the window.
	StatusInUse = "in-use"
	// StatusObserving: no legacy hit recorded, but tracking began less
	// than a window ago, so silence is not yet evidence.
	StatusObserving = "observing"
)

var migrations = []sqlitedb.Migration{{
	Name: "retirement tracker",
	SQL: `CREATE TABLE tracking (id INTEGER PRIMARY KEY CHECK (id = 1), since_unix_ns INTEGER NOT NULL);
CREATE TABLE route_hits (route TEXT PRIMARY KEY, last_unix_ns INTEGER NOT NULL);
CREATE TABLE caller_hits (
	route TEXT NOT NULL, caller TEXT NOT NULL, hits INTEGER NOT NULL, last_unix_ns INTEGER NOT NULL,
	PRIMARY KEY (route, caller)
);`,
}}

// callerStat counts one caller. hits and last are updated without the
// route's lock; flushed is guarded by it.
type callerStat struct {
	hits    atomic.Uint64
	last    atomic.Int64
	flushed uint64 // hits already added to the database
}

type routeState struct {
	name  string
	last  atomic.Int64 // Unix ns of the last legacy hit; 0 = none
	dirty atomic.Bool
	// callers is replaced, never modified, so that Hit reads it without a
	// lock; mu serialises the writers (and guards callerStat.flushed).
	mu      sync.Mutex
	callers atomic.Pointer[map[string]*callerStat]
	gauge   prometheus.GaugeFunc // MetricLastHit{route}
}

// Tracker records legacy hits per route. It is safe for concurrent use.
type Tracker struct {
	cfg    config.Retire
	routes []*routeState
	byName map[string]*routeState
	db     *sqlitedb.DB
	now    func() time.Time
	log    *slog.Logger
	// callerHeader is cfg.CallerHeader in canonical form (PeekCanonical).
	callerHeader []byte
	since        time.Time
}

// Options are a Tracker's dependencies.
type Options struct {
	// Config is the retire section of the gateway configuration (defaults applied).
	Config config.Retire
	// Routes are the route names, indexed as the gateway indexes routes
	// (the default route last).
	Routes []string
	// DB persists the history; Open migrates it. Required.
	DB *sqlitedb.DB
	// Registry receives MetricLastHit. Nil: not exported.
	Registry prometheus.Registerer
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger: default discard.
	Logger *slog.Logger
}

// New builds a tracker and loads its history from the database.
func New(ctx context.Context, o Options) (*Tracker, error) {
	if o.DB == nil {
		return nil, errors.New("retire: a database is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Config.MaxCallers <= 0 {
		o.Config.MaxCallers = 20
	}
	if err := o.DB.Migrate(ctx, migrations); err != nil {
		return nil, err
	}
	t := &Tracker{cfg: o.Config, db: o.DB, now: o.Now, log: o.Logger, byName: map[string]*routeState{},
		callerHeader: fasthttp.AppendNormalizedHeaderKey(nil, o.Config.CallerHeader)}
	for _, name := range o.Routes {
		rs := &routeState{name: name}
		rs.callers.Store(&map[string]*callerStat{})
		// Read at scrape time from the stamp Hit already keeps: the
		// request path pays no extra store for the metric.
		rs.gauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        MetricLastHit,
			Help:        "Unix time at which each route's legacy side last served a request (0: never since tracking began).",
			ConstLabels: prometheus.Labels{"route": name},
		}, func() float64 { return float64(rs.last.Load()) / 1e9 })
		if o.Registry != nil {
			if err := o.Registry.Register(rs.gauge); err != nil {
				return nil, fmt.Errorf("registering %s{route=%q}: %w", MetricLastHit, name, err)
			}
		}
		t.routes = append(t.routes, rs)
		t.byName[name] = rs
	}
	if err := t.load(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tracker) load(ctx context.Context) error {
	now := t.now().UnixNano()
	if _, err := t.db.W.ExecContext(ctx, `INSERT OR IGNORE INTO tracking(id, since_unix_ns) VALUES (1, ?)`, now); err != nil {
		return fmt.Errorf("starting retirement tracking: %w", err)
	}
	var since int64
	if err := t.db.W.QueryRowContext(ctx, `SELECT since_unix_ns FROM tracking WHERE id = 1`).Scan(&since); err != nil {
		return fmt.Errorf("reading retirement tracking start: %w", err)
	}
	t.since = time.Unix(0, since).UTC()
	rows, err := t.db.W.QueryContext(ctx, `SELECT route, last_unix_ns FROM route_hits`)
	if err != nil {
		return fmt.Errorf("loading route hits: %w", err)
	}
	for rows.Next() {
		var name string
		var last int64
		if err := rows.Scan(&name, &last); err != nil {
			rows.Close()
			return err
		}
		if rs := t.byName[name]; rs != nil {
			rs.last.Store(last)
		}
	}
	rows.Close()
	rows, err = t.db.W.QueryContext(ctx, `SELECT route, caller, hits, last_unix_ns FROM caller_hits`)
	if err != nil {
		return fmt.Errorf("loading caller hits: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, caller string
		var hits uint64
		var last int64
		if err := rows.Scan(&name, &caller, &hits, &last); err != nil {
			return err
		}
		if rs := t.byName[name]; rs != nil {
			cs := &callerStat{flushed: hits}
			cs.hits.Store(hits)
			cs.last.Store(last)
			(*rs.callers.Load())[caller] = cs // New has not returned: no reader yet
		}
	}
	return rows.Err()
}

// Hit records that the legacy side served route (an index into the routes
// given to New) at time at, for the caller c identifies. It must be called
// before the handler returns: it reads c. at comes from the caller, which
// has already read the clock for the request.
func (t *Tracker) Hit(route int, c *fiber.Ctx, at time.Time) {
	if t == nil || route < 0 || route >= len(t.routes) {
		return
	}
	rs := t.routes[route]
	now := at.UnixNano()
	var buf [64]byte
	key := t.callerKey(c, buf[:0])
	callers := *rs.callers.Load()
	cs := callers[string(key)] // no allocation: the compiler elides the conversion in a lookup
	if cs == nil && len(callers) >= t.cfg.MaxCallers {
		cs = callers[OtherCallers] // a full table: the rest share one entry
	}
	if cs == nil {
		cs = t.addCaller(rs, key)
	}
	cs.hits.Add(1)
	stamp(&cs.last, now)
	stamp(&rs.last, now)
	// Marked last: a Flush that clears the mark after this point reads the
	// counts above.
	if !rs.dirty.Load() {
		rs.dirty.Store(true)
	}
}

// stampResolution is how far a last-seen time must move before Hit stores
// it. Skipping smaller moves spares every request a write to a cache line
// that all CPUs share; a report cannot tell a millisecond.
const stampResolution = int64(time.Millisecond)

// stamp moves a last-seen time forward to now.
func stamp(v *atomic.Int64, now int64) {
	if now-v.Load() >= stampResolution {
		v.Store(now)
	}
}

// addCaller returns key's entry, creating it (or falling back to
// OtherCallers once MaxCallers are known) by replacing the map.
func (t *Tracker) addCaller(rs *routeState, key []byte) *callerStat {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	old := *rs.callers.Load()
	if cs := old[string(key)]; cs != nil {
		return cs
	}
	k := OtherCallers
	if len(old) < t.cfg.MaxCallers {
		k = string(key) // a copy: key may alias fasthttp's buffers
	}
	if cs := old[k]; cs != nil {
		return cs
	}
	cs := &callerStat{}
	next := make(map[string]*callerStat, len(old)+1)
	for id, v := range old {
		next[id] = v
	}
	next[k] = cs
	rs.callers.Store(&next)
	return cs
}

// maxCallerKey bounds a stored caller identity, in bytes.
const maxCallerKey = 200

// callerKey appends the caller's identity to dst and returns it; the result
// may alias the request's buffers and is valid only during the handler. An
// API key is reduced to a fingerprint so the tracker never holds a secret.
func (t *Tracker) callerKey(c *fiber.Ctx, dst []byte) []byte {
	var id []byte
	switch t.cfg.Caller {
	case "ip":
		if a, ok := netip.AddrFromSlice(c.Context().RemoteIP()); ok {
			return a.Unmap().AppendTo(dst)
		}
		return append(dst, "(unknown ip)"...)
	case "header":
		v := c.Request().Header.PeekCanonical(t.callerHeader)
		if len(v) == 0 {
			return append(append(append(dst, "(no "...), t.cfg.CallerHeader...), ')')
		}
		sum := sha256.Sum256(v)
		dst = append(dst, "key:"...)
		return hex.AppendEncode(dst, sum[:6])
	default:
		id = c.Request().Header.UserAgent()
		if len(id) == 0 {
			return append(dst, "(no user-agent)"...)
		}
	}
	if len(id) > maxCallerKey {
		id = id[:maxCallerKey]
	}
	return id
}
