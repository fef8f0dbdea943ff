// Package catalog is the Catalog service: products, prices and stock moved
// out of the legacy monolith, served as JSON over Fiber (port 8082 by
// convention) with its contract in openapi.yaml.
//
// State lives in one SQLite file; every change emits domain events
// (product.updated, stock.changed) through the transactional outbox, so an
// event exists exactly when its change was committed. Consumers pull them
// from GET /api/v1/events or receive them on webhooks.
package catalog

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ficus-gw/ficus/internal/reqlog"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
	"github.com/ficus-gw/ficus/newsvc/outbox"
)

// DefaultPort is the catalog's conventional listening port.
const DefaultPort = 8082

// OpenAPI is the service's contract, served at GET /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Config configures the Catalog service. The zero value of every field but
// DBPath is usable.
type Config struct {
	// DBPath is the SQLite file holding products, stock and the outbox; it
	// is created (with its directory) when absent. Required.
	DBPath string
	// Subscribers receive product.updated and stock.changed as webhooks.
	// nil means none: consumers use the pull feed only.
	Subscribers []outbox.Subscriber
	// Now is the clock for timestamps and rate limiting. nil means time.Now.
	Now func() time.Time
	// RateLimit is the sustained number of API requests per second the
	// whole service accepts before answering 429 with Retry-After: a
	// ceiling that protects the database, not a per-user quota (see
	// ClientRateLimit). Shadow copies have a budget of the same size of
	// their own. 0 means 2000; negative disables rate limiting entirely.
	RateLimit float64
	// RateBurst is how many requests may arrive at once above the sustained
	// rate (the token bucket's size). 0 means one second's worth of
	// RateLimit (at least 1).
	RateBurst int
	// ClientRateLimit is each client's sustained requests per second, the
	// client named by X-Api-Key, X-User-Id, or the address the gateway saw.
	// 0 means 100; negative disables per-client limits.
	ClientRateLimit float64
	// ClientRateBurst is each client's bucket size. 0 means twice
	// ClientRateLimit.
	ClientRateBurst int
	// MaxBodyBytes is the largest request body accepted, in bytes; larger
	// ones get 413. 0 means 64 KiB.
	MaxBodyBytes int
	// IdempotencyTTL is how long a stock adjustment's Idempotency-Key is
	// remembered. 0 means 24 hours.
	IdempotencyTTL time.Duration
	// ReadTimeout, WriteTimeout and IdleTimeout bound a connection's
	// request read, response write and keep-alive idle time. 0 means 10 s,
	// 10 s and 60 s.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// WebhookClient delivers webhooks. nil means a client with a 10 s timeout.
	WebhookClient *http.Client
	// DispatcherOptions tune webhook delivery (backoff, poll interval). nil
	// means the outbox defaults.
	DispatcherOptions []outbox.Option
	// ProviderStates serves the Pact provider-state endpoint
	// (POST /_pact/provider-states, loopback clients only) that puts test
	// data in place. For test and demo instances only; false means off.
	ProviderStates bool
	// Faults, when set, runs on every request after the request id and
	// the access log: fault injection for drills (newsvc/faults). Nil (the
	// default): none.
	Faults fiber.Handler
	// Metrics receives the catalog's, its outbox's and its HTTP requests'
	// metrics, and is served at GET /metrics on the service's own listener
	// (the gateway forwards no route there). nil means none are exported
	// and there is no /metrics.
	Metrics *prometheus.Registry
	// RequestID generates ids for requests that bring no valid X-Request-Id.
	// nil means random UUIDs.
	RequestID func() string
}

func (c *Config) setDefaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RateLimit == 0 {
		c.RateLimit = 2000
	}
	if c.ClientRateLimit == 0 {
		c.ClientRateLimit = 100
	}
	if c.ClientRateBurst == 0 {
		c.ClientRateBurst = max(1, int(2*c.ClientRateLimit))
	}
	if c.RateBurst == 0 {
		c.RateBurst = max(1, int(c.RateLimit+0.999))
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.IdempotencyTTL == 0 {
		c.IdempotencyTTL = 24 * time.Hour
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.WebhookClient == nil {
		c.WebhookClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.RequestID == nil {
		c.RequestID = uuid.NewString
	}
}

// validate reports every problem at once, each naming its field.
func (c *Config) validate() error {
	var errs []error
	if c.DBPath == "" {
		errs = append(errs, errors.New("catalog.DBPath: required"))
	}
	if c.RateBurst < 0 {
		errs = append(errs, fmt.Errorf("catalog.RateBurst: %d is negative", c.RateBurst))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("catalog.MaxBodyBytes: %d is negative", c.MaxBodyBytes))
	}
	if c.IdempotencyTTL < 0 {
		errs = append(errs, fmt.Errorf("catalog.IdempotencyTTL: %v is negative", c.IdempotencyTTL))
	}
	for name, d := range map[string]time.Duration{"ReadTimeout": c.ReadTimeout, "WriteTimeout": c.WriteTimeout, "IdleTimeout": c.IdleTimeout} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("catalog.%s: %v is negative", name, d))
		}
	}
	if err := outbox.ValidateSubscribers(c.Subscribers); err != nil {
		errs = append(errs, fmt.Errorf("catalog.Subscribers: %w", err))
	}
	return errors.Join(errs...)
}

// Service is a running Catalog: its database, HTTP API and event delivery.
type Service struct {
	cfg        Config
	log        *slog.Logger
	reqlog     *reqlog.Logger // request lines: debug, failures rate-limited
	db         *sqlitedb.DB
	now        func() time.Time
	dispatcher *outbox.Dispatcher
	app        *fiber.App
	metrics    *metrics
}

// Open validates cfg, opens and migrates the database and builds the HTTP
// API. It starts nothing: serve App() on a listener and call Run for event
// delivery. A nil log discards logs.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Service, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", "catalog")
	db, err := sqlitedb.Open(cfg.DBPath)
	if err != nil {
		return nil, fmt.Errorf("opening catalog database: %w", err)
	}
	if err := db.Migrate(ctx, migrations); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("migrating catalog database: %w", err)
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	opts := cfg.DispatcherOptions
	if cfg.Metrics != nil {
		opts = append(slices.Clip(opts), outbox.WithMetrics(cfg.Metrics, "catalog"))
	}
	s := &Service{cfg: cfg, log: log, reqlog: reqlog.New(log), db: db, now: cfg.Now, metrics: m}
	s.dispatcher = outbox.NewDispatcher(db, cfg.Subscribers, cfg.WebhookClient, log.With("component", "outbox"), opts...)
	s.app = s.newApp()
	return s, nil
}

// App returns the HTTP API. Serve it with app.Listener(ln); stop it with
// app.ShutdownWithContext before Close.
func (s *Service) App() *fiber.App { return s.app }

// Run delivers events to the webhook subscribers and prunes expired
// idempotency keys until ctx is done; it then returns nil. It returns an
// error at once if the subscribers are misconfigured.
func (s *Service) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.dispatcher.Run(ctx) }()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			if errc != nil {
				<-errc // the dispatcher stops on the same ctx
			}
			return nil
		case err := <-errc:
			if err != nil {
				return fmt.Errorf("catalog event delivery: %w", err)
			}
			errc = nil // stopped without error: keep pruning until ctx is done
		case <-prune.C:
			if n, err := s.pruneIdempotencyKeys(ctx); err != nil {
				s.log.Error("pruning idempotency keys", "err", err)
			} else if n > 0 {
				s.log.Info("pruned idempotency keys", "count", n)
			}
		}
	}
}

// Close closes the database. Shut the App down and let Run return first.
func (s *Service) Close() error {
	return s.db.Close()
}
