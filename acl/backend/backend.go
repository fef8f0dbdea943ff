// Package backend serves the new services' contract (/api/v1/products...,
// /api/v1/orders...) from the legacy shop, through the anti-corruption
// layer. The gateway routes the legacy's share of /api/v1 traffic here, so a
// client sees one contract whichever side serves it: the same JSON, status
// codes, error codes (apierr) and idempotency rules as newsvc.
//
// Identifiers are shared with the new side: a product's sku is the legacy
// art_nr, and an order's orderId is the one the dual-run sync gives it in
// the order service (acl.OrderID), so an id obtained from one side works on
// the other. The backend keeps a small SQLite file of its own for
// Idempotency-Key records and the orderId -> ord_no index.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ficus-gw/ficus/acl"
	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/contracts/providerstate"
	"github.com/ficus-gw/ficus/internal/reqlog"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
	"github.com/ficus-gw/ficus/internal/svcmetrics"
)

// DefaultAddr is where `ficus acl` conventionally listens.
const DefaultAddr = "127.0.0.1:8084"

// Config configures the backend. Zero values mean the defaults named on each
// field.
type Config struct {
	// LegacyURL is the legacy shop's root, e.g. http://127.0.0.1:8081.
	// Required.
	LegacyURL string
	// CatalogOpenAPI and OrderOpenAPI are the new services' own OpenAPI
	// documents (catalog.OpenAPI, order.OpenAPI()), which the backend
	// serves at /openapi.yaml restricted to its paths (PublicContract).
	// Required. They are passed in, not imported, so that the ACL depends
	// on the contract (contracts/api) and not on the services' packages.
	CatalogOpenAPI []byte
	OrderOpenAPI   []byte
	// DBPath is the backend's own SQLite file (idempotency records, order
	// id index); created when absent. Required.
	DBPath string
	// Location is the zone of the legacy's local times. nil means
	// Europe/Berlin.
	Location *time.Location
	// Client tunes the legacy client (timeouts, retries, breaker); its
	// BaseURL is set from LegacyURL. The zero value means acl's defaults.
	Client acl.ClientConfig
	// MaxBodyBytes caps a write's request body, in bytes; larger is 413.
	// 0 means 64 KiB.
	MaxBodyBytes int
	// IdempotencyTTL is how long a POST /orders Idempotency-Key is
	// remembered and its reply replayed. 0 means 24h.
	IdempotencyTTL time.Duration
	// Now is the clock for dry-run timestamps and key expiry. nil means
	// time.Now.
	Now func() time.Time
	// RequestID generates request ids for requests without a valid
	// X-Request-Id. nil means random UUIDs.
	RequestID func() string
	// ProviderStates serves the Pact provider-state endpoint
	// (POST /_pact/provider-states, loopback clients only). For test and
	// demo instances only; false means off.
	ProviderStates bool
	// Metrics receives the backend's metrics (ficus_acl_* and its HTTP
	// requests') and is served at GET /metrics on the backend's own
	// listener (the gateway forwards no route there). nil means none are
	// exported and there is no /metrics.
	Metrics *prometheus.Registry
}

func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.LegacyURL == "" {
		errs = append(errs, errors.New("backend: LegacyURL is required"))
	}
	if c.DBPath == "" {
		errs = append(errs, errors.New("backend: DBPath is required"))
	}
	if len(c.CatalogOpenAPI) == 0 || len(c.OrderOpenAPI) == 0 {
		errs = append(errs, errors.New("backend: CatalogOpenAPI and OrderOpenAPI are required"))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("backend: MaxBodyBytes %d is negative", c.MaxBodyBytes))
	}
	if c.IdempotencyTTL < 0 {
		errs = append(errs, fmt.Errorf("backend: IdempotencyTTL %v is negative", c.IdempotencyTTL))
	}
	if len(errs) > 0 {
		return c, errors.Join(errs...)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.IdempotencyTTL == 0 {
		c.IdempotencyTTL = 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RequestID == nil {
		c.RequestID = uuid.NewString
	}
	c.Client.BaseURL = c.LegacyURL
	return c, nil
}

// legacyShop is what the backend needs from the legacy; *acl.Client
// implements it.
type legacyShop interface {
	Product(ctx context.Context, artNr string) (acl.Artikel, error)
	CatalogExport(ctx context.Context, kat string) (acl.KatalogExport, error)
	Order(ctx context.Context, ordNo string) (acl.Auftrag, error)
	CustomerOrders(ctx context.Context, custNo string) (acl.KundenAuftraege, error)
	PlaceOrder(ctx context.Context, f acl.PlaceOrderForm) (acl.Auftrag, error)
	Transition(ctx context.Context, a acl.Action, ordNo string) (acl.Auftrag, error)
	OrdersSince(ctx context.Context, since int64, max int) (acl.Export, error)
}

var _ legacyShop = (*acl.Client)(nil)

// Backend is the new contract served from the legacy.
type Backend struct {
	cfg    Config
	log    *slog.Logger
	reqlog *reqlog.Logger // request lines: debug, failures rate-limited
	db     *sqlitedb.DB
	legacy legacyShop
	tr     acl.Translator
	app    *fiber.App
	// openAPI is the document served at /openapi.yaml (PublicContract).
	openAPI []byte
	metrics *metrics

	indexMu sync.Mutex // one catch-up of the order index at a time
}

// Open opens (creating and migrating) the backend's database and builds its
// Fiber app. Nothing listens until the caller serves App. A nil log
// discards logs. Close it when done.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Backend, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", "acl")
	tr, err := acl.NewTranslator(cfg.Location)
	if err != nil {
		return nil, err
	}
	client, err := acl.NewClient(cfg.Client, log)
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	db, err := sqlitedb.Open(cfg.DBPath)
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	if err := db.Migrate(ctx, migrations); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("backend: %w", err)
	}
	spec, err := PublicContract(cfg.CatalogOpenAPI, cfg.OrderOpenAPI)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	b := &Backend{cfg: cfg, log: log, reqlog: reqlog.New(log), db: db, legacy: client, tr: tr, openAPI: spec, metrics: m}
	b.app = b.newApp()
	return b, nil
}

// App is the backend's Fiber app. Serve it with app.Listener(ln) (by
// convention on DefaultAddr); shut it down before Close.
func (b *Backend) App() *fiber.App { return b.app }

// Close shuts the app down (when serving) and closes the database.
func (b *Backend) Close() error {
	_ = b.app.ShutdownWithTimeout(5 * time.Second) // an error only says it was not serving
	return b.db.Close()
}

// Run forgets expired Idempotency-Key records once an hour until ctx is
// done; then it returns nil. Serving works without it, but the database
// grows by one record per order.
func (b *Backend) Run(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if n, err := b.PruneKeys(ctx); err != nil {
				b.log.Error("pruning idempotency keys", "err", err)
			} else if n > 0 {
				b.log.Info("pruned idempotency keys", "count", n)
			}
		}
	}
}

// PruneKeys forgets Idempotency-Key records older than IdempotencyTTL and
// returns how many; Run calls it hourly.
func (b *Backend) PruneKeys(ctx context.Context) (int64, error) {
	cutoff := b.cfg.Now().Add(-b.cfg.IdempotencyTTL).UTC().Format(stampLayout)
	res, err := b.db.W.ExecContext(ctx, `DELETE FROM idempotency WHERE created_at < ?`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("backend: pruning idempotency keys: %w", err)
	}
	return res.RowsAffected()
}

// stampLayout is a fixed-width UTC timestamp, so that stored stamps compare
// correctly as strings.
const stampLayout = "2006-01-02T15:04:05.000000000Z"

var migrations = []sqlitedb.Migration{{
	Name: "idempotency records, order id index, feed checkpoint",
	SQL: `CREATE TABLE idempotency (
	key          TEXT PRIMARY KEY,
	request_hash TEXT NOT NULL,
	status       INTEGER NOT NULL,
	location     TEXT NOT NULL,
	body         BLOB NOT NULL,
	created_at   TEXT NOT NULL
);
CREATE TABLE order_index (
	order_id TEXT PRIMARY KEY,
	ord_no   TEXT NOT NULL UNIQUE
);
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);`,
}}

func (b *Backend) newApp() *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:               "ficus-acl",
		DisableStartupMessage: true,
		ErrorHandler:          apierr.Handler(b.log),
		BodyLimit:             max(4*b.cfg.MaxBodyBytes, 1<<20),
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           60 * time.Second,
		StrictRouting:         true,
		CaseSensitive:         true,
	})
	app.Use(recover.New())
	app.Use(apierr.RequestIDMiddleware(b.cfg.RequestID))
	if b.metrics != nil {
		app.Use(b.metrics.http.Fiber())
		svcmetrics.Mount(app, b.cfg.Metrics)
	}
	app.Use(b.accessLog)
	app.Get("/openapi.yaml", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "application/yaml")
		return c.Send(b.openAPI)
	})
	v1 := app.Group("/api/v1")
	v1.Get("/products", b.listProductsV1)
	v1.Get("/products/:sku", b.getProduct)
	v1.Put("/products/:sku", readOnlyCatalog)
	v1.Post("/products/:sku/stock-adjustments", readOnlyCatalog)
	v1.Post("/stock-reservations/:reference/release", readOnlyCatalog)
	v1.Post("/orders", b.placeOrder)
	v1.Get("/orders", b.listOrders)
	v1.Get("/orders/:orderId", b.getOrder)
	v1.Post("/orders/:orderId/cancel", b.transition(acl.ActionCancel))
	v1.Post("/orders/:orderId/pay", b.transition(acl.ActionPay))
	v1.Post("/orders/:orderId/ship", b.transition(acl.ActionShip))
	app.Get("/api/v2/products", b.listProductsV2)
	if b.cfg.ProviderStates {
		providerstate.Mount(app, b.providerStates(), b.log)
	}
	return app
}

// accessLog logs one line per request with its request id, after the
// error handler has rendered any error, so the logged status is the sent one.
func (b *Backend) accessLog(c *fiber.Ctx) error {
	start := time.Now()
	if err := c.Next(); err != nil {
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	b.reqlog.Request(c.UserContext(), c.Response().StatusCode(), "method", c.Method(), "path", c.Path(),
		"duration_ms", float64(time.Since(start).Microseconds())/1000, "request_id", apierr.RequestID(c), "shadow", isShadow(c))
	return nil
}

// readOnlyCatalog answers catalog writes: the legacy has no API to change
// an article, so they cannot be served from it. The answer is the one the
// gateway gives for them (its products routes allow GET and HEAD only): 405
// METHOD_NOT_ALLOWED with Allow: GET, HEAD, so a client gets the same answer
// whichever side a canary sends it to (docs/contracts.md, "Catalog writes").
func readOnlyCatalog(c *fiber.Ctx) error {
	c.Set(fiber.HeaderAllow, "GET, HEAD")
	return apierr.New(apierr.CodeMethodNotAllowed, "catalog writes are served only by the catalog service; this side is read-only")
}

// ShadowHeader marks a mirrored write: with value "1" it is validated and
// answered as if applied, but nothing reaches the legacy's write endpoints.
const ShadowHeader = "X-Ficus-Shadow"

func isShadow(c *fiber.Ctx) bool { return c.Get(ShadowHeader) == "1" }

// ctx returns the request's context carrying its request id to the legacy.
func ctx(c *fiber.Ctx) context.Context {
	return acl.WithRequestID(c.UserContext(), apierr.RequestID(c))
}
