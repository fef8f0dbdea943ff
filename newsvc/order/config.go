package order

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ficus-gw/ficus/newsvc/outbox"
)

// DefaultAddr is where `ficus orders` listens unless told otherwise.
const DefaultAddr = ":8083"

// Config configures the Order service. Zero values are replaced by the
// defaults named on each field, in one place (withDefaults).
type Config struct {
	// DBPath is the SQLite file the service owns (created when absent).
	// Required: there is no default.
	DBPath string
	// CatalogURL is the base URL of the Catalog service, e.g.
	// http://127.0.0.1:8082. Required.
	CatalogURL string
	// CatalogTimeout bounds each call to the Catalog, end to end. Zero means
	// 2s.
	CatalogTimeout time.Duration
	// Subscribers receive the service's domain events by webhook, at least
	// once (the outbox Dispatcher started by Run). Nil means none: consumers
	// can still pull GET /api/v1/events.
	Subscribers []outbox.Subscriber
	// ProviderStates serves the Pact provider-state endpoint
	// (POST /_pact/provider-states, loopback clients only) that puts test
	// data in place. For test and demo instances only; false means off.
	ProviderStates bool
	// Faults, when set, runs on every request after the request id and
	// the access log: fault injection for drills (newsvc/faults). Nil (the
	// default): none.
	Faults fiber.Handler
	// Now is the clock for timestamps, the rate limiter and the breaker's
	// Retry-After. Nil means time.Now.
	Now func() time.Time

	// BreakerFailures is how many consecutive failed Catalog calls (transport
	// errors, timeouts, 5xx) open the circuit breaker. Zero means 5.
	BreakerFailures uint32
	// BreakerOpenFor is how long the open breaker fails Catalog calls fast
	// (503 with Retry-After) before letting one probe through. Zero means 10s.
	BreakerOpenFor time.Duration

	// RatePerSecond is the sustained request rate the service accepts across
	// all clients (token bucket refill, requests per second); above it
	// requests get 429 with Retry-After. Zero means 200; negative disables
	// rate limiting.
	RatePerSecond float64
	// RateBurst is the token bucket's capacity, in requests. Zero means 200.
	RateBurst int
	// ClientRatePerSecond is each client's sustained rate, the client named
	// by X-Api-Key, X-User-Id, or the address the gateway saw. Zero means
	// 20; negative disables per-client limits. Shadow copies have their
	// own budget (RatePerSecond) and never spend a client's.
	ClientRatePerSecond float64
	// ClientRateBurst is each client's bucket size. Zero means twice
	// ClientRatePerSecond.
	ClientRateBurst int

	// MaxBodyBytes caps a write's request body, in bytes; larger is 413.
	// Zero means 64 KiB.
	MaxBodyBytes int
	// IdempotencyWait bounds how long a request waits for a concurrent one
	// with the same Idempotency-Key to finish before answering 409
	// IDEMPOTENCY_KEY_IN_USE. Zero means 10s.
	IdempotencyWait time.Duration
	// IdempotencyLease is how long a claimed but unfinished key (its request
	// died with the process) blocks retries before a retry may take it over.
	// Zero means 60s.
	IdempotencyLease time.Duration
	// SweepInterval is how often Run looks for claims left pending beyond
	// IdempotencyLease (their process died) and resolves them; Run also
	// sweeps once at start. Zero means a quarter of IdempotencyLease.
	SweepInterval time.Duration
	// InternalFromAnyAddr serves the /internal/v1 endpoints (integrity data
	// for reconcile) to clients on any address. False means loopback
	// clients only.
	InternalFromAnyAddr bool
	// IdempotencyTTL is how long a finished Idempotency-Key is remembered
	// (and its reply replayed); Run forgets older ones hourly. Zero means 24h.
	IdempotencyTTL time.Duration
	// Metrics receives the service's Prometheus metrics (ficus_order_*,
	// its outbox's ficus_outbox_* and its HTTP requests') and is served at
	// GET /metrics on the service's own listener (the gateway forwards no
	// route there). Nil means they are kept but not exported, and there is
	// no /metrics.
	Metrics *prometheus.Registry
	// RequestID generates request ids when the client sends none. Nil means
	// random UUIDs.
	RequestID func() string
}

const (
	defaultCatalogTimeout   = 2 * time.Second
	defaultBreakerFailures  = 5
	defaultBreakerOpenFor   = 10 * time.Second
	defaultRatePerSecond    = 200
	defaultRateBurst        = 200
	defaultMaxBodyBytes     = 64 << 10
	defaultIdempotencyWait  = 10 * time.Second
	defaultIdempotencyLease = 60 * time.Second
	defaultIdempotencyTTL   = 24 * time.Hour
)

// withDefaults returns cfg with every zero field replaced by its default,
// and an error naming each field that cannot be used.
func (cfg Config) withDefaults() (Config, error) {
	var errs []error
	if cfg.DBPath == "" {
		errs = append(errs, errors.New("order: DBPath is required"))
	}
	if u, err := url.Parse(cfg.CatalogURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("order: CatalogURL %q must be an absolute http(s) URL", cfg.CatalogURL))
	}
	if cfg.CatalogTimeout < 0 {
		errs = append(errs, fmt.Errorf("order: CatalogTimeout %s is negative", cfg.CatalogTimeout))
	}
	if cfg.RateBurst < 0 {
		errs = append(errs, fmt.Errorf("order: RateBurst %d is negative", cfg.RateBurst))
	}
	if cfg.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("order: MaxBodyBytes %d is negative", cfg.MaxBodyBytes))
	}
	if len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	if cfg.CatalogTimeout == 0 {
		cfg.CatalogTimeout = defaultCatalogTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BreakerFailures == 0 {
		cfg.BreakerFailures = defaultBreakerFailures
	}
	if cfg.BreakerOpenFor <= 0 {
		cfg.BreakerOpenFor = defaultBreakerOpenFor
	}
	if cfg.RatePerSecond == 0 {
		cfg.RatePerSecond = defaultRatePerSecond
	}
	if cfg.RateBurst == 0 {
		cfg.RateBurst = defaultRateBurst
	}
	if cfg.ClientRatePerSecond == 0 {
		cfg.ClientRatePerSecond = 20
	}
	if cfg.ClientRateBurst == 0 {
		cfg.ClientRateBurst = max(1, int(2*cfg.ClientRatePerSecond))
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = defaultMaxBodyBytes
	}
	if cfg.IdempotencyWait <= 0 {
		cfg.IdempotencyWait = defaultIdempotencyWait
	}
	if cfg.IdempotencyLease <= 0 {
		cfg.IdempotencyLease = defaultIdempotencyLease
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = cfg.IdempotencyLease / 4
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = defaultIdempotencyTTL
	}
	return cfg, nil
}
