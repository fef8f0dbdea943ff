package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Limits of the contract; the OpenAPI documents state the same numbers.
const (
	// MaxSKULength bounds a SKU (the Sku schema's maxLength).
	MaxSKULength = 64
	// MaxCategoryLength bounds a category name.
	MaxCategoryLength = 64
	// DefaultPageSize and MaxPageSize are the limit parameter of every list.
	DefaultPageSize = 20
	MaxPageSize     = 100
	// MaxOrderItems, MaxQuantity and MaxIDLength bound a PlaceOrderRequest.
	MaxOrderItems = 50
	MaxQuantity   = 1000
	MaxIDLength   = 64
	// MaxIdempotencyKeyLength bounds the Idempotency-Key header.
	MaxIdempotencyKeyLength = 128
)

// ValidationError is a request that breaks a rule of the contract. Every
// provider answers it 400 VALIDATION_FAILED with this Message and Details
// (apierr converts it); it is a type of its own so that this package
// needs no HTTP machinery.
type ValidationError struct {
	Message string
	Details any
}

func (e *ValidationError) Error() string { return "VALIDATION_FAILED: " + e.Message }

// Violation is one field that failed validation, in the details of an
// order request's VALIDATION_FAILED.
type Violation struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// FieldProblem is the details of a catalog VALIDATION_FAILED.
type FieldProblem struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

// Validation is the error for vs (at least one): its message names the
// first violation, its details list them all, so a client can mark every
// bad field at once.
func Validation(vs []Violation) *ValidationError {
	return &ValidationError{
		Message: fmt.Sprintf("%s %s", vs[0].Field, vs[0].Message),
		Details: map[string]any{"field": vs[0].Field, "violations": vs},
	}
}

// PlaceRequest is the PlaceOrderRequest schema, the body of POST
// /api/v1/orders.
type PlaceRequest struct {
	CustomerID string      `json:"customerId"`
	Currency   string      `json:"currency,omitempty"`
	Items      []PlaceItem `json:"items"`
}

// PlaceItem is the OrderItemRequest schema.
type PlaceItem struct {
	Sku      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// Hash is the canonical hash of a request: the SHA-256 of its re-encoding,
// so that whitespace and key order do not make "the same body" differ. Two
// requests under one Idempotency-Key are the same intent when their hashes
// are equal, whichever provider received them.
func (r PlaceRequest) Hash() string {
	b, _ := json.Marshal(r) // cannot fail: strings and ints only
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Validate checks the request's shape and ranges: the contract's rules,
// which every server of POST /api/v1/orders applies. Whether the SKUs
// exist, are priced in the currency and are in stock is the Catalog's
// business (422), not this (400). It returns nil or a *ValidationError
// listing every violation.
func (r PlaceRequest) Validate() error {
	var vs []Violation
	add := func(field, format string, args ...any) {
		vs = append(vs, Violation{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(r.CustomerID) == "" || len(r.CustomerID) > MaxIDLength {
		add("customerId", "must be 1 to %d characters", MaxIDLength)
	}
	if r.Currency != "" && !ValidCurrency(r.Currency) {
		add("currency", "must be an ISO 4217 code like EUR")
	}
	if len(r.Items) == 0 || len(r.Items) > MaxOrderItems {
		add("items", "must hold 1 to %d items", MaxOrderItems)
	}
	seen := make(map[string]bool, len(r.Items))
	for i, it := range r.Items {
		if strings.TrimSpace(it.Sku) == "" || len(it.Sku) > MaxIDLength {
			add(fmt.Sprintf("items[%d].sku", i), "must be 1 to %d characters", MaxIDLength)
		} else if seen[it.Sku] {
			add(fmt.Sprintf("items[%d].sku", i), "repeats an earlier item; give each SKU once with its total quantity")
		}
		seen[it.Sku] = true
		if it.Quantity < 1 || it.Quantity > MaxQuantity {
			add(fmt.Sprintf("items[%d].quantity", i), "must be between 1 and %d", MaxQuantity)
		}
	}
	if len(vs) > 0 {
		return Validation(vs)
	}
	return nil
}

// ValidCurrency accepts the shape of an ISO 4217 alphabetic code (three
// upper-case letters); whether the code is priced is a business rule.
func ValidCurrency(c string) bool {
	return len(c) == 3 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' && c[2] >= 'A' && c[2] <= 'Z'
}

// ValidIdempotencyKey accepts 1-128 printable ASCII characters: keys are
// stored and logged, so control characters and spaces are refused.
func ValidIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > MaxIdempotencyKeyLength {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// IntentRef is the lineage of a client's intent, derived from its
// Idempotency-Key: "ik-" and the hex of the first 16 bytes of the key's
// SHA-256. The order service records it on every order it books, and the
// anti-corruption layer sends the same value to the legacy as ext_ref, so one
// key names one intent on both sides and reconcile can find an intent booked
// twice. Keys may be 128 characters with spaces, ext_ref at most 64 without:
// hence the hash. It never has the shape of an order id (a UUID), so it
// cannot be mistaken for a write-back reference.
func IntentRef(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "ik-" + hex.EncodeToString(sum[:16])
}

// ValidSKU reports whether s has the Sku schema's shape: 1-64 characters of
// A-Z a-z 0-9 - _ .
func ValidSKU(s string) bool {
	if len(s) == 0 || len(s) > MaxSKULength {
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

// ValidCategory reports whether s is a category name: 1-64 characters of
// a-z 0-9 -, not starting with -.
func ValidCategory(s string) bool {
	if len(s) == 0 || len(s) > MaxCategoryLength || s[0] == '-' {
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

// ListQuery is a validated request for one page of a product list
// (GET /api/v1/products, /api/v2/products).
type ListQuery struct {
	// Limit is the page size, 1 to 100.
	Limit int
	// Category filters by category; empty means every category.
	Category string
	// After is the last SKU of the previous page; empty on the first page.
	After string
}

// ParseListQuery validates the list parameters as the contract defines
// them (limit, cursor, category). Every server of the contract uses it, so
// a client can switch sides between pages: cursors have one format. The
// error is a *ValidationError.
func ParseListQuery(limit, cursor, category string) (ListQuery, error) {
	q := ListQuery{Limit: DefaultPageSize, Category: strings.Clone(category)}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > MaxPageSize {
			return q, &ValidationError{Message: fmt.Sprintf("limit must be an integer from 1 to %d", MaxPageSize),
				Details: FieldProblem{"limit", "out of range"}}
		}
		q.Limit = n
	}
	if category != "" && !ValidCategory(category) {
		return q, &ValidationError{Message: "category must be 1-64 characters of a-z 0-9 -",
			Details: FieldProblem{"category", "invalid"}}
	}
	if cursor != "" {
		after, err := DecodeCursor(cursor, category)
		if err != nil {
			return q, err
		}
		q.After = after
	}
	return q, nil
}

// cursorVersion prefixes cursors so their format can change without
// misreading old ones.
const cursorVersion = "c1"

// EncodeCursor makes the opaque product-list cursor after sku. It embeds
// the category filter so that a cursor cannot silently be reused with
// another filter.
func EncodeCursor(sku, category string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + "\n" + category + "\n" + sku))
}

// DecodeCursor returns the SKU a product-list cursor resumes after, or a
// *ValidationError when raw is not a cursor issued for category.
func DecodeCursor(raw, category string) (string, error) {
	bad := &ValidationError{Message: "cursor is not one this service issued; start again without it",
		Details: FieldProblem{"cursor", "invalid"}}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return "", bad
	}
	parts := strings.Split(string(b), "\n")
	if len(parts) != 3 || parts[0] != cursorVersion || !ValidSKU(parts[2]) {
		return "", bad
	}
	if parts[1] != category {
		return "", &ValidationError{Message: fmt.Sprintf("cursor was issued for category %q; repeat that filter or start again", parts[1]),
			Details: FieldProblem{"cursor", "category mismatch"}}
	}
	return parts[2], nil
}
