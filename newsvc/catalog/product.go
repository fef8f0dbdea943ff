package catalog

import (
	"time"
	"unicode/utf8"

	"github.com/ficus-gw/ficus/newsvc/apierr"
)

// Money is an amount in the currency's minor unit, so that prices are exact
// integers (1299 EUR = 12.99 €).
type Money struct {
	AmountMinor int64  `json:"amountMinor"`
	Currency    string `json:"currency"`
}

// Product is the catalog's aggregate: what is sold, at which price, and how
// many units are on hand.
type Product struct {
	SKU         string `json:"sku"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Category    string `json:"category"`
	Price       Money  `json:"price"`
	// Stock is the number of units on hand and not reserved; never negative.
	Stock int64 `json:"stock"`
	// Available is Stock > 0, spelled out so consumers need no rule of their own.
	Available bool      `json:"available"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Version starts at 1 and increases by one on every change; it is also
	// the ETag.
	Version int64 `json:"version"`
}

// productV2 is the v2 list item: a Product without the price, which moved
// out of lists (see docs/contracts.md, "Versioning").
type productV2 struct {
	SKU         string    `json:"sku"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Category    string    `json:"category"`
	Stock       int64     `json:"stock"`
	Available   bool      `json:"available"`
	UpdatedAt   time.Time `json:"updatedAt"`
	Version     int64     `json:"version"`
}

func (p Product) v2() productV2 {
	return productV2{SKU: p.SKU, Name: p.Name, Description: p.Description, Category: p.Category,
		Stock: p.Stock, Available: p.Available, UpdatedAt: p.UpdatedAt, Version: p.Version}
}

// Limits of the catalog's fields, mirrored in openapi.yaml.
const (
	maxSKULen         = 64
	maxNameLen        = 200
	maxDescriptionLen = 4000
	maxCategoryLen    = 64
	maxStock          = 1_000_000_000
	maxReferenceLen   = 128
	maxIdempotencyLen = 128
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
type fieldError struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

// validate checks the input and returns the product fields it carries. All
// problems are reported at once, so a client fixes them in one round trip.
func (in productInput) validate(sku string) (Product, error) {
	var errs []fieldError
	bad := func(field, problem string) { errs = append(errs, fieldError{field, problem}) }
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
	} else if !validCategory(*in.Category) {
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
			WithDetails(fieldError{"price.currency", "unsupported currency"})
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
	bad := func(field, problem string) { errs = append(errs, fieldError{field, problem}) }
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

// ValidSKU reports whether s has the contract's SKU shape.
func ValidSKU(s string) bool {
	if len(s) == 0 || len(s) > maxSKULen {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.') {
			return false
		}
	}
	return true
}

func validCategory(s string) bool {
	if len(s) == 0 || len(s) > maxCategoryLen || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-') {
			return false
		}
	}
	return true
}

func validCurrencyCode(s string) bool {
	return len(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z'
}

func validIdempotencyKey(s string) bool {
	if len(s) == 0 || len(s) > maxIdempotencyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
