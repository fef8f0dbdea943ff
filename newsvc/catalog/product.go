package catalog

import (
	"unicode/utf8"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/contracts/api"
)

// Money and Product are the contract's types (contracts/api): the catalog
// stores and serves exactly the published shape.
type (
	Money   = api.Money
	Product = api.Product
)

// Limits of the catalog's fields, mirrored in openapi.yaml.
const (
	maxNameLen        = 200
	maxDescriptionLen = 4000
	maxStock          = 1_000_000_000
	maxReferenceLen   = 128
	// catalogCurrency is the only currency the shop prices in.
	catalogCurrency = "EUR"
)

// productInput is the body of PUT /api/v1/products/{sku}. Pointers tell a
// missing field from a zero one.
type productInput struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Category    *string `json:"category"`
	Price       *struct {
		AmountMinor *int64  `json:"amountMinor"`
		Currency    *string `json:"currency"`
	} `json:"price"`
	Stock *int64 `json:"stock"`
}

// fieldError is one entry of a VALIDATION_FAILED error's details.
type fieldError = api.FieldProblem

func problem(field, p string) fieldError { return fieldError{Field: field, Problem: p} }

// validate checks the input and returns the product fields it carries. All
// problems are reported at once, so a client fixes them in one round trip.
func (in productInput) validate(sku string) (Product, error) {
	var errs []fieldError
	bad := func(field, why string) { errs = append(errs, problem(field, why)) }
	p := Product{SKU: sku}
	if in.Name == nil {
		bad("name", "required")
	} else if n := utf8.RuneCountInString(*in.Name); n < 1 || n > maxNameLen || !utf8.ValidString(*in.Name) {
		bad("name", "must be 1-200 characters")
	} else {
		p.Name = *in.Name
	}
	if in.Description != nil {
		if utf8.RuneCountInString(*in.Description) > maxDescriptionLen || !utf8.ValidString(*in.Description) {
			bad("description", "must be at most 4000 characters")
		} else {
			p.Description = *in.Description
		}
	}
	if in.Category == nil {
		bad("category", "required")
	} else if !api.ValidCategory(*in.Category) {
		bad("category", "must be 1-64 characters of a-z 0-9 -, starting with a letter or digit")
	} else {
		p.Category = *in.Category
	}
	switch {
	case in.Price == nil:
		bad("price", "required")
	default:
		if in.Price.AmountMinor == nil {
			bad("price.amountMinor", "required")
		} else if *in.Price.AmountMinor < 0 {
			bad("price.amountMinor", "must not be negative")
		} else {
			p.Price.AmountMinor = *in.Price.AmountMinor
		}
		if in.Price.Currency == nil {
			bad("price.currency", "required")
		} else if !validCurrencyCode(*in.Price.Currency) {
			bad("price.currency", "must be an ISO 4217 code such as EUR")
		} else {
			p.Price.Currency = *in.Price.Currency
		}
	}
	if in.Stock == nil {
		bad("stock", "required")
	} else if *in.Stock < 0 || *in.Stock > maxStock {
		bad("stock", "must be from 0 to 1000000000")
	} else {
		p.Stock = *in.Stock
	}
	if len(errs) > 0 {
		return Product{}, apierr.New(apierr.CodeValidation, "the product has %d invalid field(s)", len(errs)).WithDetails(errs)
	}
	// Well-formed but against a business rule: 422, not 400.
	if p.Price.Currency != catalogCurrency {
		return Product{}, apierr.New(apierr.CodeBusinessRule, "the catalog prices in %s only, not %s", catalogCurrency, p.Price.Currency).
			WithDetails(problem("price.currency", "unsupported currency"))
	}
	return p, nil
}

// stockAdjustmentInput is the body of POST .../stock-adjustments.
type stockAdjustmentInput struct {
	Delta     *int64  `json:"delta"`
	Reason    *string `json:"reason"`
	Reference *string `json:"reference"`
}

// adjustmentReasons are the reasons a stock adjustment may give; consumers
// of stock.changed branch on them.
var adjustmentReasons = map[string]bool{
	"order-reserved": true, // an order took the units
	"order-released": true, // a cancelled order gave them back
	"restock":        true,
	"correction":     true, // an inventory count disagreed
	"shrinkage":      true, // damaged or lost
}

type adjustment struct {
	Delta     int64
	Reason    string
	Reference string
}

func (in stockAdjustmentInput) validate() (adjustment, error) {
	var errs []fieldError
	bad := func(field, why string) { errs = append(errs, problem(field, why)) }
	var a adjustment
	if in.Delta == nil {
		bad("delta", "required")
	} else if *in.Delta == 0 || *in.Delta < -maxStock || *in.Delta > maxStock {
		bad("delta", "must be non-zero, from -1000000000 to 1000000000")
	} else {
		a.Delta = *in.Delta
	}
	if in.Reason == nil {
		bad("reason", "required")
	} else if !adjustmentReasons[*in.Reason] {
		bad("reason", "must be one of order-reserved, order-released, restock, correction, shrinkage")
	} else {
		a.Reason = *in.Reason
	}
	if in.Reference != nil {
		if len(*in.Reference) > maxReferenceLen || !utf8.ValidString(*in.Reference) {
			bad("reference", "must be at most 128 bytes of UTF-8")
		} else {
			a.Reference = *in.Reference
		}
	}
	if len(errs) > 0 {
		return adjustment{}, apierr.New(apierr.CodeValidation, "the stock adjustment has %d invalid field(s)", len(errs)).WithDetails(errs)
	}
	return a, nil
}

func validCurrencyCode(s string) bool { return api.ValidCurrency(s) }

func validIdempotencyKey(s string) bool { return api.ValidIdempotencyKey(s) }
