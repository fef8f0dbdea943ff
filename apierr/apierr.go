// Package apierr is Ficus's one error model, shared by the gateway, the new
// services and the anti-corruption backend: every non-2xx response body is
// {"code","message","details"?,"requestId"}, and a code decides the HTTP
// status in exactly one place. It is a leaf: it imports no Ficus package but
// the contract's own types (contracts/api), so the gateway can use it
// without building any service.
package apierr

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/contracts/api"
)

// Codes are machine-readable and stable: consumers branch on them. Add new
// ones; never change the meaning of one that shipped.
const (
	CodeMalformed          = "MALFORMED_REQUEST"        // 400: not parseable, wrong types, unknown fields
	CodeValidation         = "VALIDATION_FAILED"        // 400: well-formed but a field is out of range
	CodeIdempotencyMissing = "IDEMPOTENCY_KEY_REQUIRED" // 400
	CodeUnauthorized       = "UNAUTHORIZED"             // 401
	CodeNotFound           = "NOT_FOUND"                // 404
	CodeMethodNotAllowed   = "METHOD_NOT_ALLOWED"       // 405
	CodeConflict           = "CONFLICT"                 // 409
	CodeIdempotencyReused  = "IDEMPOTENCY_KEY_REUSED"   // 409: same key, different body
	CodeIdempotencyBusy    = "IDEMPOTENCY_KEY_IN_USE"   // 409: same key still being processed
	CodeIllegalTransition  = "ILLEGAL_STATE_TRANSITION" // 409
	CodeTooLarge           = "PAYLOAD_TOO_LARGE"        // 413
	CodeUnsupportedMedia   = "UNSUPPORTED_MEDIA_TYPE"   // 415
	CodeInvalidItem        = "INVALID_ITEM"             // 422
	CodeOutOfStock         = "OUT_OF_STOCK"             // 422
	CodeBusinessRule       = "BUSINESS_RULE_VIOLATED"   // 422
	CodeRateLimited        = "RATE_LIMITED"             // 429
	CodeInternal           = "INTERNAL"                 // 500
	CodeDependency         = "DEPENDENCY_UNAVAILABLE"   // 503
	CodeTimeout            = "DEPENDENCY_TIMEOUT"       // 504
)

var statusOf = map[string]int{
	CodeMalformed:          fiber.StatusBadRequest,
	CodeValidation:         fiber.StatusBadRequest,
	CodeIdempotencyMissing: fiber.StatusBadRequest,
	CodeUnauthorized:       fiber.StatusUnauthorized,
	CodeNotFound:           fiber.StatusNotFound,
	CodeMethodNotAllowed:   fiber.StatusMethodNotAllowed,
	CodeConflict:           fiber.StatusConflict,
	CodeIdempotencyReused:  fiber.StatusConflict,
	CodeIdempotencyBusy:    fiber.StatusConflict,
	CodeIllegalTransition:  fiber.StatusConflict,
	CodeTooLarge:           fiber.StatusRequestEntityTooLarge,
	CodeUnsupportedMedia:   fiber.StatusUnsupportedMediaType,
	CodeInvalidItem:        fiber.StatusUnprocessableEntity,
	CodeOutOfStock:         fiber.StatusUnprocessableEntity,
	CodeBusinessRule:       fiber.StatusUnprocessableEntity,
	CodeRateLimited:        fiber.StatusTooManyRequests,
	CodeInternal:           fiber.StatusInternalServerError,
	CodeDependency:         fiber.StatusServiceUnavailable,
	CodeTimeout:            fiber.StatusGatewayTimeout,
}

// Error is an application error that reaches the client as a structured body.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Details is optional, e.g. {"field":"items[0].quantity"} or the offending SKUs.
	Details any `json:"details,omitempty"`
	// RetryAfter, in seconds, is sent as Retry-After when > 0 (429, 503).
	RetryAfter int `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// New returns an Error with a formatted message.
func New(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithDetails returns a copy of e carrying details.
func (e *Error) WithDetails(d any) *Error {
	c := *e
	c.Details = d
	return &c
}

// Status maps a code to its HTTP status; unknown codes are 500.
func Status(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return fiber.StatusInternalServerError
}

// Body is the wire form of every error response, the contract's Error
// schema.
type Body = api.ErrorBody

// RequestIDHeader carries the request id in and out of the services.
const RequestIDHeader = "X-Request-Id"

// Handler is a fiber.ErrorHandler that writes every error as Body. Errors
// that are not *Error (and not *fiber.Error) are logged and answered as a
// generic 500 so that no internal text reaches the client.
func Handler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		var ae *Error
		var fe *fiber.Error
		var ve *api.ValidationError
		switch {
		case errors.As(err, &ae):
		case errors.As(err, &ve):
			ae = fromContract(ve)
		case errors.As(err, &fe):
			ae = fromFiber(fe)
		default:
			log.Error("unhandled error", "err", err, "method", c.Method(), "path", c.Path(), "request_id", RequestID(c))
			ae = &Error{Code: CodeInternal, Message: "internal error; quote the requestId when reporting it"}
		}
		if ae.RetryAfter > 0 {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(ae.RetryAfter))
		}
		return c.Status(Status(ae.Code)).JSON(Body{Code: ae.Code, Message: ae.Message, Details: ae.Details, RequestID: RequestID(c)})
	}
}

func fromFiber(fe *fiber.Error) *Error {
	switch fe.Code {
	case fiber.StatusNotFound:
		return &Error{Code: CodeNotFound, Message: "no such resource"}
	case fiber.StatusMethodNotAllowed:
		return &Error{Code: CodeMethodNotAllowed, Message: "method not allowed on this resource"}
	case fiber.StatusRequestEntityTooLarge:
		return &Error{Code: CodeTooLarge, Message: "request body too large"}
	case fiber.StatusUnsupportedMediaType:
		return &Error{Code: CodeUnsupportedMedia, Message: "send Content-Type: application/json"}
	case fiber.StatusTooManyRequests:
		return &Error{Code: CodeRateLimited, Message: "too many requests", RetryAfter: 1}
	}
	if fe.Code >= 400 && fe.Code < 500 {
		return &Error{Code: CodeMalformed, Message: fe.Message}
	}
	return &Error{Code: CodeInternal, Message: "internal error; quote the requestId when reporting it"}
}

// RequestID returns the request id that the RequestIDMiddleware stored.
func RequestID(c *fiber.Ctx) string {
	if v, ok := c.Locals(requestIDKey{}).(string); ok {
		return v
	}
	return ""
}

type requestIDKey struct{}

// RequestIDMiddleware keeps a valid inbound X-Request-Id (1-128 characters of
// [A-Za-z0-9._-]), generates one otherwise, and echoes it on the response.
func RequestIDMiddleware(gen func() string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id := c.Get(RequestIDHeader)
		if !ValidRequestID(id) {
			id = gen()
		} else {
			id = string([]byte(id)) // detach from fasthttp's buffer
		}
		c.Locals(requestIDKey{}, id)
		c.Set(RequestIDHeader, id)
		return c.Next()
	}
}

// ValidRequestID reports whether id is safe to propagate and log.
func ValidRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.') {
			return false
		}
	}
	return true
}

// Violation is one field that failed validation.
type Violation = api.Violation

// Validation is the VALIDATION_FAILED error for vs (at least one): its
// message names the first violation, its details list them all, so a
// client can mark every bad field at once.
func Validation(vs []Violation) *Error {
	return fromContract(api.Validation(vs))
}

// Contract returns err as an *Error when it is a rule of the contract
// (an *api.ValidationError: 400 VALIDATION_FAILED), and err unchanged
// otherwise, so that handlers and access logs see one error type.
func Contract(err error) error {
	var ve *api.ValidationError
	if errors.As(err, &ve) {
		return fromContract(ve)
	}
	return err
}

func fromContract(ve *api.ValidationError) *Error {
	return &Error{Code: CodeValidation, Message: ve.Message, Details: ve.Details}
}
