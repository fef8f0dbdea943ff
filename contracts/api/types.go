package api

import "time"

// Money is the Money schema: an amount in the currency's minor unit (cents
// for EUR), so that prices and sums are exact integers.
type Money struct {
	AmountMinor int64  `json:"amountMinor"`
	Currency    string `json:"currency"`
}

// Product is the Product schema of the catalog (also ProductListItemV1, the
// item of GET /api/v1/products).
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
	// Version only grows: the catalog service adds one on every change, the
	// ACL gives the legacy's chg_seq of the article's last change. It is
	// also the ETag.
	Version int64 `json:"version"`
}

// ProductV2 is the ProductListItemV2 schema, the item of GET
// /api/v2/products: a Product without the price, which moved out of lists
// (docs/contracts.md, "Versioning").
type ProductV2 struct {
	SKU         string    `json:"sku"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Category    string    `json:"category"`
	Stock       int64     `json:"stock"`
	Available   bool      `json:"available"`
	UpdatedAt   time.Time `json:"updatedAt"`
	Version     int64     `json:"version"`
}

// V2 is p as an item of the v2 list.
func (p Product) V2() ProductV2 {
	return ProductV2{SKU: p.SKU, Name: p.Name, Description: p.Description, Category: p.Category,
		Stock: p.Stock, Available: p.Available, UpdatedAt: p.UpdatedAt, Version: p.Version}
}

// Page is every list of the contract (ProductPageV1, ProductPageV2,
// OrderPage, ReservationPage). NextCursor is absent on the last page, never
// null (docs/contracts.md, "Pagination"); a cursor is never empty.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// Status is where an order is in its life (the Order schema's status). The
// set is closed: a consumer may switch on it exhaustively.
type Status string

// The order statuses of the contract.
const (
	StatusPlaced    Status = "PLACED"
	StatusPaid      Status = "PAID"
	StatusShipped   Status = "SHIPPED"
	StatusCancelled Status = "CANCELLED"
)

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusPlaced, StatusPaid, StatusShipped, StatusCancelled:
		return true
	}
	return false
}

// OrderLine is the OrderLine schema: one product of an order with its price
// snapshotted at placement.
type OrderLine struct {
	Sku       string `json:"sku"`
	Name      string `json:"name"`
	Quantity  int    `json:"quantity"`
	UnitPrice Money  `json:"unitPrice"`
	LineTotal Money  `json:"lineTotal"`
}

// Order is the Order schema.
type Order struct {
	ID         string      `json:"orderId"`
	CustomerID string      `json:"customerId"`
	Status     Status      `json:"status"`
	Currency   string      `json:"currency"`
	Lines      []OrderLine `json:"items"`
	Total      Money       `json:"total"`
	// LegacyOrderNo is the legacy's order number, when the legacy holds
	// the order too; absent otherwise.
	LegacyOrderNo string    `json:"legacyOrderNo,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
	// Version only grows (the ACL gives the legacy's chg_seq).
	Version int64 `json:"version"`
}

// ErrorBody is the Error schema, the body of every non-2xx response.
// Code is an open set (docs/contracts.md, "Errors").
type ErrorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Details   any    `json:"details,omitempty"`
	RequestID string `json:"requestId"`
}
