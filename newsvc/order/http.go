package order

import (
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/google/uuid"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/contracts/api"
	"github.com/ficus-gw/ficus/contracts/providerstate"
	"github.com/ficus-gw/ficus/internal/svcmetrics"
	"github.com/ficus-gw/ficus/newsvc/outbox"
)

// openAPI is the service's contract, served at GET /openapi.yaml. It was
// written before the code; tests validate every response against it. A
// string, so that nothing can modify it.
//
//go:embed openapi.yaml
var openAPI string

// OpenAPI returns the service's OpenAPI 3.0.3 document (YAML), e.g. for the
// gateway's contract checks.
func OpenAPI() string { return openAPI }

// Limits of the request contract; openapi.yaml states the same numbers.
const (
	maxIDLength    = api.MaxIDLength
	maxKeyLength   = api.MaxIdempotencyKeyLength
	maxJSONDepth   = 16
	defaultPage    = api.DefaultPageSize
	maxPage        = api.MaxPageSize
	shadowHeader   = "X-Ficus-Shadow"
	idempotencyHdr = "Idempotency-Key"
)

// validCurrency accepts the shape of an ISO 4217 alphabetic code; whether
// the code exists is the Catalog's concern (it prices the products).
func validCurrency(c string) bool { return api.ValidCurrency(c) }

func (s *Service) newApp() *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:               "ficus-order",
		DisableStartupMessage: true,
		ErrorHandler:          apierr.Handler(s.log),
		// The server-level cap only protects memory; the handlers answer
		// smaller oversize bodies themselves, with the request id.
		BodyLimit:    max(4*s.cfg.MaxBodyBytes, 1<<20),
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 10 * time.Second,
		IdleTimeout:  60 * time.Second,
	})
	app.Use(recover.New())
	gen := s.cfg.RequestID
	if gen == nil {
		gen = uuid.NewString
	}
	app.Use(apierr.RequestIDMiddleware(gen))
	if s.cfg.Metrics != nil {
		app.Use(s.metrics.http.Fiber())
		svcmetrics.Mount(app, s.cfg.Metrics)
	}
	app.Use(s.accessLog)
	if s.cfg.Faults != nil {
		app.Use(s.cfg.Faults)
	}
	app.Get("/openapi.yaml", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "application/yaml")
		return c.SendString(openAPI)
	})
	api := app.Group("/api/v1", s.rateLimit)
	api.Post("/orders", s.handlePlace)
	api.Get("/orders", s.handleList)
	api.Get("/orders/:orderId", s.handleGet)
	api.Post("/orders/:orderId/cancel", s.handleTransition(ActionCancel))
	api.Post("/orders/:orderId/pay", s.handleTransition(ActionPay))
	api.Post("/orders/:orderId/ship", s.handleTransition(ActionShip))
	api.Get("/events", outbox.PullHandler(s.db, Upcasters()...))
	app.Get("/internal/v1/integrity", s.handleIntegrity)
	if s.cfg.ProviderStates {
		providerstate.Mount(app, s.providerStates(), s.log)
		providerstate.MountMessages(app, providerstate.OutboxProducer(s.db.R, Upcasters()), s.log)
	}
	return app
}

func (s *Service) accessLog(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	status := c.Response().StatusCode()
	if err != nil {
		var ae *apierr.Error
		var fe *fiber.Error
		switch {
		case errors.As(err, &ae):
			status = apierr.Status(ae.Code)
		case errors.As(err, &fe):
			status = fe.Code
		default:
			status = fiber.StatusInternalServerError
		}
	}
	s.reqlog.Request(c.UserContext(), status, "method", c.Method(), "path", c.Path(),
		"duration_ms", float64(time.Since(start).Microseconds())/1000, "request_id", apierr.RequestID(c))
	return err
}

func isDryRun(c *fiber.Ctx) bool { return c.Get(shadowHeader) == "1" }

// validKey accepts 1-128 printable ASCII characters: keys are stored and
// logged, so control characters are refused.
func validKey(k string) bool { return api.ValidIdempotencyKey(k) }

// decodeBody strictly decodes a JSON write body into v: JSON media type,
// size cap, nesting cap, no unknown fields, no trailing data. Every failure
// is a structured 4xx. An empty body is accepted only when !required (v is
// then left untouched).
func (s *Service) decodeBody(c *fiber.Ctx, v any, required bool) error {
	return decodeJSON(c.Body(), c.Get(fiber.HeaderContentType), s.cfg.MaxBodyBytes, v, required)
}

// decodeJSON is decodeBody without Fiber, so that it can be fuzzed.
func decodeJSON(body []byte, contentType string, maxBytes int, v any, required bool) error {
	return apierr.DecodeJSON(body, contentType, apierr.DecodeOptions{MaxBytes: maxBytes, MaxDepth: maxJSONDepth, Required: required}, v)
}

func (s *Service) handlePlace(c *fiber.Ctx) error {
	requestID := apierr.RequestID(c)
	key := c.Get(idempotencyHdr)
	if key == "" {
		return apierr.New(apierr.CodeIdempotencyMissing, "send an Idempotency-Key header so that retries cannot place the order twice")
	}
	if !validKey(key) {
		return apierr.Validation([]apierr.Violation{{Field: idempotencyHdr, Message: fmt.Sprintf("must be 1 to %d printable ASCII characters", maxKeyLength)}})
	}
	key = strings.Clone(key)
	var req PlaceRequest
	if err := s.decodeBody(c, &req, true); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return apierr.Contract(err)
	}
	if isDryRun(c) {
		o, err := s.priceOrder(c.UserContext(), req, uuid.NewString(), requestID, true)
		if err != nil {
			return err
		}
		now := s.cfg.Now().UTC()
		o.CreatedAt, o.UpdatedAt, o.Status, o.Version = now, now, StatusPlaced, 1
		c.Location("/api/v1/orders/" + o.ID)
		return c.Status(fiber.StatusCreated).JSON(o)
	}
	r, err := s.placeOrder(c.UserContext(), req, key, requestID)
	if err != nil {
		return err
	}
	c.Location(r.location)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(r.status).Send(r.body)
}

func (s *Service) handleGet(c *fiber.Ctx) error {
	o, err := getOrder(c.UserContext(), s.db.R, c.Params("orderId"))
	if errors.Is(err, errNotFound) {
		return apierr.New(apierr.CodeNotFound, "no order %q", c.Params("orderId"))
	}
	if err != nil {
		return err
	}
	return c.JSON(o)
}

// orderPage is the body of GET /api/v1/orders.
type orderPage = api.Page[Order]

// Cursors are opaque to clients; the prefix versions their format.
const cursorPrefix = "o1:"

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(seq, 10)))
}

func decodeCursor(s string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(string(b), cursorPrefix)
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseInt(rest, 10, 64)
	return seq, err == nil && seq > 0
}

func (s *Service) handleList(c *fiber.Ctx) error {
	var vs []apierr.Violation
	customer := c.Query("customerId")
	if strings.TrimSpace(customer) == "" || len(customer) > maxIDLength {
		vs = append(vs, apierr.Violation{Field: "customerId", Message: fmt.Sprintf("is required, 1 to %d characters", maxIDLength)})
	}
	limit := defaultPage
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxPage {
			vs = append(vs, apierr.Violation{Field: "limit", Message: fmt.Sprintf("must be an integer from 1 to %d", maxPage)})
		}
		limit = n
	}
	before := int64(math.MaxInt64)
	if raw := c.Query("cursor"); raw != "" {
		seq, ok := decodeCursor(raw)
		if !ok {
			vs = append(vs, apierr.Violation{Field: "cursor", Message: "is not a cursor this service issued"})
		}
		before = seq
	}
	if len(vs) > 0 {
		return apierr.Validation(vs)
	}
	orders, next, err := listOrders(c.UserContext(), s.db.R, customer, before, limit)
	if err != nil {
		return err
	}
	page := orderPage{Items: orders}
	if next > 0 {
		page.NextCursor = encodeCursor(next)
	}
	return c.JSON(page)
}

func (s *Service) handleTransition(a Action) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var empty struct{}
		if err := s.decodeBody(c, &empty, false); err != nil {
			return err
		}
		id := c.Params("orderId")
		o, err := s.transition(c.UserContext(), id, a, apierr.RequestID(c), isDryRun(c))
		if errors.Is(err, errNotFound) {
			return apierr.New(apierr.CodeNotFound, "no order %q", id)
		}
		if err != nil {
			return err
		}
		return c.JSON(o)
	}
}
