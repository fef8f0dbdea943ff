package acl

import (
	"errors"

	"github.com/ficus-gw/ficus/apierr"
)

// Op names the legacy call an error came from: the same legacy code means
// different things to a client depending on what was asked (E001 is a 404
// for a product lookup but a 422 INVALID_ITEM for an order line).
type Op string

// The operations whose legacy errors the ACL translates.
const (
	OpProduct        Op = "product"
	OpPlaceOrder     Op = "place-order"
	OpOrder          Op = "order"
	OpTransition     Op = "transition"
	OpCustomerOrders Op = "customer-orders"
	OpFeed           Op = "feed"
)

// APIError translates a legacy business error (HTTP 200 with <error>) into
// the new contract's error for op. An unknown code is an explicit INTERNAL
// error naming the code, never a guess.
func APIError(op Op, le *LegacyError) *apierr.Error {
	switch le.Code {
	case CodeUnknownArticle:
		if op == OpPlaceOrder {
			return apierr.New(apierr.CodeInvalidItem, "an item is not in the catalog: %s", le.Message)
		}
		return apierr.New(apierr.CodeNotFound, "no such product: %s", le.Message)
	case CodeInsufficientStock:
		return apierr.New(apierr.CodeOutOfStock, "not enough stock: %s", le.Message)
	case CodeIllegalTransition:
		return apierr.New(apierr.CodeIllegalTransition, "illegal status transition: %s", le.Message)
	case CodeUnknownOrder:
		return apierr.New(apierr.CodeNotFound, "no such order: %s", le.Message)
	case CodeBadInput:
		return apierr.New(apierr.CodeValidation, "the legacy refused the input: %s", le.Message)
	case CodeUnknownCustomer:
		if op == OpCustomerOrders {
			return apierr.New(apierr.CodeNotFound, "no such customer: %s", le.Message)
		}
		return apierr.New(apierr.CodeBusinessRule, "unknown customer: %s", le.Message).
			WithDetails(map[string]string{"field": "customerId"})
	case CodeExtRefConflict:
		return apierr.New(apierr.CodeIdempotencyReused, "this Idempotency-Key was used by another customer")
	}
	return apierr.New(apierr.CodeInternal, "the legacy answered an unknown error code %q", le.Code)
}

// ErrUnavailable wraps failures to get any answer from the legacy: transport
// errors, timeouts, HTTP 5xx, an open circuit breaker.
var ErrUnavailable = errors.New("acl: legacy unavailable")

// ErrProtocol wraps answers the legacy should never give to a well-formed
// request from the ACL (HTTP 400/404/405/413 HTML pages): a bug on one side.
var ErrProtocol = errors.New("acl: legacy protocol error")

// ContractError translates any error of a legacy call into the contract's
// error: business errors by code, unavailability as 503 with Retry-After,
// everything else (malformed documents, unknown values) as INTERNAL.
func ContractError(op Op, err error) *apierr.Error {
	var ae *apierr.Error
	var le *LegacyError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &le):
		return APIError(op, le)
	case errors.Is(err, ErrUnavailable):
		e := apierr.New(apierr.CodeDependency, "the legacy shop is unavailable; retry later")
		e.RetryAfter = 1
		return e
	}
	return apierr.New(apierr.CodeInternal, "the legacy answer could not be translated")
}
