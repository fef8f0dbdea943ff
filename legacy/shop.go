// Package legacy is a simulated legacy shop monolith: the system Ficus stands
// in front of while routes move, one at a time, to the new services.
//
// It behaves like an old servlet application on purpose: RPC-style URLs
// (/shop/catalog.do), form-encoded POSTs, XML responses with German field
// names, decimal-comma money, local timestamps without a zone, and business
// errors sent as HTTP 200 with an <error code="..."> body. The wire format is
// specified in docs/legacy.md; the anti-corruption layer depends on it, so
// change it only together with that document.
package legacy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/ficus-gw/ficus/internal/reqlog"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults applied by Open to zero Config fields.
const (
	DefaultProducts = 240
	DefaultSeed     = 1
	DefaultZone     = "Europe/Berlin"
	// DefaultAddr is where `ficus legacy` conventionally listens.
	DefaultAddr = ":8081"
)

// Config configures a Shop. The zero value of every field except DBPath has
// a usable default.
type Config struct {
	// DBPath is the SQLite file of the shop; it and its directory are created
	// and seeded on first start. Required.
	DBPath string
	// Location is the zone of the legacy's local times (all dates on the
	// wire are wall-clock times in it, without offset). nil means
	// Europe/Berlin.
	Location *time.Location
	// Products is the number of products seeded on first start; ignored
	// once the database is seeded. 0 means 240; negative is an error.
	Products int
	// Seed makes the demo data (catalog, customers, historic orders)
	// deterministic. 0 means 1.
	Seed int64
	// Now is the clock for order and change timestamps and for the dates of
	// the seeded history (which lies in the 120 days before the first
	// start). nil means time.Now.
	Now func() time.Time
	// FaultRand returns a uniform number in [0,1) that decides whether an
	// injected error rate hits a request. It is called concurrently. nil
	// means math/rand/v2's Float64; tests inject a fixed sequence.
	FaultRand func() float64
	// Metrics receives the shop's metrics (requests by servlet path,
	// injected faults). The shop does not serve them itself: every path of
	// its listener may be forwarded by a gateway's catch-all route, so the
	// caller serves the registry on a listener of its own (ficus legacy
	// --metrics-listen). nil means none are kept.
	Metrics prometheus.Registerer
}

// withDefaults returns cfg with every zero field replaced by its default.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.DBPath == "" {
		return cfg, errors.New("legacy: Config.DBPath is required")
	}
	if cfg.Products < 0 {
		return cfg, fmt.Errorf("legacy: Config.Products must be >= 0, got %d", cfg.Products)
	}
	if cfg.Products == 0 {
		cfg.Products = DefaultProducts
	}
	if cfg.Seed == 0 {
		cfg.Seed = DefaultSeed
	}
	if cfg.Location == nil {
		loc, err := time.LoadLocation(DefaultZone)
		if err != nil {
			return cfg, fmt.Errorf("legacy: loading zone %s: %w", DefaultZone, err)
		}
		cfg.Location = loc
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.FaultRand == nil {
		cfg.FaultRand = rand.Float64
	}
	return cfg, nil
}

// Shop is the running legacy monolith: its database and its HTTP handler.
// It is safe for concurrent use.
type Shop struct {
	cfg     Config
	db      *sqlitedb.DB
	log     *slog.Logger
	reqlog  *reqlog.Logger // request lines: debug, failures rate-limited
	faults  *faultTable
	handler http.Handler
	metrics *metrics
}

// Open opens the shop's database, migrates its schema and, on first start
// only, seeds the deterministic demo data. A nil log discards logs. Close
// the Shop when done.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Shop, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := sqlitedb.Open(cfg.DBPath)
	if err != nil {
		return nil, fmt.Errorf("legacy: %w", err)
	}
	if err := db.Migrate(ctx, migrations); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("legacy: %w", err)
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s := &Shop{cfg: cfg, db: db, log: log.With("component", "legacy"), faults: newFaultTable(), metrics: m}
	s.reqlog = reqlog.New(s.log)
	seeded, err := s.seed(ctx)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("legacy: seeding %s: %w", cfg.DBPath, err)
	}
	if seeded {
		s.log.InfoContext(ctx, "seeded demo data", "products", cfg.Products, "seed", cfg.Seed, "db", cfg.DBPath)
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the whole shop, including the fault-injection admin
// endpoint /shop/admin/faults. Mount it at the root: every path it serves
// starts with /shop/.
func (s *Shop) Handler() http.Handler { return s.handler }

// Close closes the database. Requests still in flight fail with HTTP 500;
// shut the HTTP server down first.
func (s *Shop) Close() error { return s.db.Close() }

func (s *Shop) now() time.Time { return s.cfg.Now() }
