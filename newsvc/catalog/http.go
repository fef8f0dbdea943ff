package catalog

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/contracts/api"
	"github.com/ficus-gw/ficus/contracts/providerstate"
	"github.com/ficus-gw/ficus/internal/svcmetrics"
	"github.com/ficus-gw/ficus/newsvc/outbox"
)

// maxJSONDepth bounds nesting of request bodies: no valid body nests deeper
// than 2, and refusing early keeps hostile bodies cheap.
const maxJSONDepth = 16

// ShadowHeader marks a mirrored write: with value "1" the request is
// validated and answered as if applied, but changes nothing and emits no
// event.
const ShadowHeader = "X-Ficus-Shadow"

// The deprecation of price in v1 list items (see docs/contracts.md).
var (
	// listV1DeprecatedAt is when GET /api/v1/products became deprecated.
	listV1DeprecatedAt = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	// listV1SunsetAt is the earliest date it may be removed.
	listV1SunsetAt = time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)
)

func (s *Service) newApp() *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:               "ficus-catalog",
		ErrorHandler:          apierr.Handler(s.log),
		BodyLimit:             s.cfg.MaxBodyBytes,
		ReadTimeout:           s.cfg.ReadTimeout,
		WriteTimeout:          s.cfg.WriteTimeout,
		IdleTimeout:           s.cfg.IdleTimeout,
		DisableStartupMessage: true,
		// Strict routing/case keep one URL per resource.
		StrictRouting: true,
		CaseSensitive: true,
	})
	app.Use(recover.New())
	app.Use(apierr.RequestIDMiddleware(s.cfg.RequestID))
	if s.metrics != nil {
		// Before the rate limit: a scrape is never refused.
		app.Use(s.metrics.http.Fiber())
		svcmetrics.Mount(app, s.cfg.Metrics)
	}
	app.Use(s.accessLog)
	if s.cfg.Faults != nil {
		app.Use(s.cfg.Faults)
	}
	if mw := s.rateLimit(); mw != nil {
		app.Use(mw)
	}

	app.Get("/openapi.yaml", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "application/yaml")
		return c.Send(OpenAPI)
	})
	v1 := app.Group("/api/v1")
	v1.Get("/products", s.listProductsV1)
	v1.Get("/products/:sku", s.getProduct)
	v1.Put("/products/:sku", s.putProduct)
	v1.Post("/products/:sku/stock-adjustments", s.postStockAdjustment)
	v1.Get("/stock-reservations", s.listReservations)
	v1.Post("/stock-reservations/:reference/release", s.postReservationRelease)
	v1.Get("/events", outbox.PullHandler(s.db))
	app.Get("/api/v2/products", s.listProductsV2)
	if s.cfg.ProviderStates {
		providerstate.Mount(app, s.providerStates(), s.log)
		providerstate.MountMessages(app, providerstate.OutboxProducer(s.db.R, nil), s.log)
	}
	return app
}

// accessLog logs each request with its request id (internal/reqlog: at
// debug level, failures rate-limited at error). It renders
// errors itself (through the app's ErrorHandler) so that the logged status
// is the one sent.
func (s *Service) accessLog(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	s.reqlog.Request(c.UserContext(), c.Response().StatusCode(),
		"method", c.Method(), "route", c.Route().Path,
		"duration_ms", float64(time.Since(start).Microseconds())/1000,
		"request_id", apierr.RequestID(c), "shadow", isShadow(c))
	return nil
}

func isShadow(c *fiber.Ctx) bool { return c.Get(ShadowHeader) == "1" }

func meta(c *fiber.Ctx) reqMeta {
	return reqMeta{requestID: apierr.RequestID(c), shadow: isShadow(c)}
}

func (s *Service) listProductsV1(c *fiber.Ctx) error {
	items, next, err := s.listPage(c)
	if err != nil {
		return err
	}
	// RFC 9745 Deprecation, RFC 8594 Sunset, RFC 8288 Link.
	c.Set("Deprecation", "@"+strconv.FormatInt(listV1DeprecatedAt.Unix(), 10))
	c.Set("Sunset", listV1SunsetAt.Format(http.TimeFormat))
	c.Set(fiber.HeaderLink, `</api/v2/products>; rel="successor-version", </openapi.yaml>; rel="deprecation"; type="application/yaml"`)
	return c.JSON(api.Page[Product]{Items: items, NextCursor: next})
}

func (s *Service) listProductsV2(c *fiber.Ctx) error {
	items, next, err := s.listPage(c)
	if err != nil {
		return err
	}
	out := make([]api.ProductV2, len(items))
	for i, p := range items {
		out[i] = p.V2()
	}
	return c.JSON(api.Page[api.ProductV2]{Items: out, NextCursor: next})
}

// listPage reads limit, cursor and category and returns one page of
// products and the cursor of the next (nil on the last page).
func (s *Service) listPage(c *fiber.Ctx) ([]Product, string, error) {
	q, err := api.ParseListQuery(c.Query("limit"), c.Query("cursor"), c.Query("category"))
	if err != nil {
		return nil, "", apierr.Contract(err)
	}
	limit, category, after := q.Limit, q.Category, q.After
	// One extra row tells whether another page exists without a COUNT.
	items, err := listProducts(c.UserContext(), s.db.R, after, category, limit+1)
	if err != nil {
		return nil, "", err
	}
	var next string
	if len(items) > limit {
		items = items[:limit]
		next = api.EncodeCursor(items[limit-1].SKU, category)
	}
	return items, next, nil
}

func skuParam(c *fiber.Ctx) (string, error) {
	sku := c.Params("sku")
	if !api.ValidSKU(sku) {
		return "", apierr.New(apierr.CodeNotFound, "no product with SKU %q", sku)
	}
	return strings.Clone(sku), nil
}

func (s *Service) getProduct(c *fiber.Ctx) error {
	sku, err := skuParam(c)
	if err != nil {
		return err
	}
	p, err := getProduct(c.UserContext(), s.db.R, sku)
	if errors.Is(err, errNoProduct) {
		return apierr.New(apierr.CodeNotFound, "no product with SKU %s", sku)
	}
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, etag(p.Version))
	return c.JSON(p)
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

func (s *Service) putProduct(c *fiber.Ctx) error {
	sku := c.Params("sku")
	if !api.ValidSKU(sku) {
		return apierr.New(apierr.CodeValidation, "SKU must be 1-64 characters of A-Z a-z 0-9 . _ -").
			WithDetails(problem("sku", "invalid"))
	}
	sku = strings.Clone(sku)
	var ifMatch *int64
	if raw := c.Get(fiber.HeaderIfMatch); raw != "" {
		v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(raw, "W/"), `"`), 10, 64)
		if err != nil {
			return apierr.New(apierr.CodeValidation, `If-Match must be an ETag of this service, such as "3"`).
				WithDetails(problem("If-Match", "invalid"))
		}
		ifMatch = &v
	}
	var in productInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p, err := in.validate(sku)
	if err != nil {
		return err
	}
	res, err := s.upsertProduct(c.UserContext(), meta(c), p, ifMatch)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, etag(res.product.Version))
	if res.created {
		c.Set(fiber.HeaderLocation, "/api/v1/products/"+sku)
		c.Status(fiber.StatusCreated)
	}
	return c.JSON(res.product)
}

// IdempotencyKeyHeader names the header that makes a stock adjustment safe
// to retry.
const IdempotencyKeyHeader = "Idempotency-Key"

func (s *Service) postStockAdjustment(c *fiber.Ctx) error {
	sku, err := skuParam(c)
	if err != nil {
		return err
	}
	key := c.Get(IdempotencyKeyHeader)
	if key == "" {
		return apierr.New(apierr.CodeIdempotencyMissing, "send an Idempotency-Key header so that a retry cannot adjust stock twice")
	}
	if !validIdempotencyKey(key) {
		return apierr.New(apierr.CodeValidation, "Idempotency-Key must be 1-128 printable ASCII characters").
			WithDetails(problem(IdempotencyKeyHeader, "invalid"))
	}
	key = strings.Clone(key)
	var in stockAdjustmentInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	a, err := in.validate()
	if err != nil {
		return err
	}
	m := meta(c)
	res, err := s.adjustStock(c.UserContext(), m, sku, key, a)
	if err != nil {
		var ae *apierr.Error
		if errors.As(err, &ae) {
			switch ae.Code {
			case apierr.CodeOutOfStock:
				s.metrics.adjustment(outcomeOutOfStock)
			case apierr.CodeIdempotencyReused:
				s.metrics.adjustment(outcomeKeyReused)
			case apierr.CodeConflict:
				s.metrics.adjustment(outcomeReferenceReleased)
			}
		}
		return err
	}
	switch {
	case res.replay:
		c.Set("Idempotent-Replayed", "true")
		s.metrics.adjustment(outcomeReplayed)
	case m.shadow:
		s.metrics.adjustment(outcomeShadow)
	default:
		s.metrics.adjustment(outcomeApplied)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(res.status).Send(res.body)
}

// decodeJSON reads the body into dst strictly: JSON media type, one value,
// no unknown fields, bounded nesting. Every failure is a structured 4xx.
func decodeJSON(c *fiber.Ctx, dst any) error {
	return apierr.DecodeJSON(c.Body(), c.Get(fiber.HeaderContentType),
		apierr.DecodeOptions{MaxDepth: maxJSONDepth, Required: true}, dst)
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1, as
// Retry-After (RFC 9110 10.2.3) carries.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
