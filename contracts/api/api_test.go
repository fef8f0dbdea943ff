package api

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// The published baselines are the contract these types must match.
func loadPublished(t *testing.T) map[string]*openapi3.T {
	t.Helper()
	docs := map[string]*openapi3.T{}
	for _, name := range []string{"catalog-v1", "orders-v1"} {
		doc, err := openapi3.NewLoader().LoadFromFile("../published/" + name + ".yaml")
		if err != nil {
			t.Fatalf("loading %s: %v", name, err)
		}
		if err := doc.Validate(t.Context()); err != nil {
			t.Fatalf("%s is not a valid OpenAPI document: %v", name, err)
		}
		docs[name] = doc
	}
	return docs
}

var (
	at      = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	eur     = Money{AmountMinor: 1299, Currency: "EUR"}
	product = Product{SKU: "ART-1001", Name: "Desk lamp", Description: "brass", Category: "lamps",
		Price: eur, Stock: 3, Available: true, UpdatedAt: at, Version: 7}
	line  = OrderLine{Sku: "ART-1001", Name: "Desk lamp", Quantity: 2, UnitPrice: eur, LineTotal: Money{AmountMinor: 2598, Currency: "EUR"}}
	order = Order{ID: "3f0c9a52-6a55-4f57-9f4e-2b0cdb8a3c11", CustomerID: "42", Status: StatusPaid, Currency: "EUR",
		Lines: []OrderLine{line}, Total: line.LineTotal, LegacyOrderNo: "100017", CreatedAt: at, UpdatedAt: at, Version: 2}
)

// contractTypes pairs each component schema with the Go type that is its
// wire form, and an example value of it.
var contractTypes = []struct {
	doc, schema string
	value       any
}{
	{"catalog-v1", "Money", eur},
	{"catalog-v1", "Product", product},
	{"catalog-v1", "ProductListItemV1", product},
	{"catalog-v1", "ProductListItemV2", product.V2()},
	{"catalog-v1", "ProductPageV1", Page[Product]{Items: []Product{product}, NextCursor: EncodeCursor("ART-1001", "")}},
	{"catalog-v1", "ProductPageV2", Page[ProductV2]{Items: []ProductV2{product.V2()}}},
	{"catalog-v1", "Error", ErrorBody{Code: "VALIDATION_FAILED", Message: "limit must be an integer from 1 to 100",
		Details: FieldProblem{"limit", "out of range"}, RequestID: "r-1"}},
	{"orders-v1", "Money", eur},
	{"orders-v1", "OrderLine", line},
	{"orders-v1", "Order", order},
	{"orders-v1", "OrderPage", Page[Order]{Items: []Order{order}, NextCursor: "bzE6Nw"}},
	{"orders-v1", "PlaceOrderRequest", PlaceRequest{CustomerID: "42", Currency: "EUR", Items: []PlaceItem{{Sku: "ART-1001", Quantity: 2}}}},
	{"orders-v1", "OrderItemRequest", PlaceItem{Sku: "ART-1001", Quantity: 2}},
	{"orders-v1", "Error", ErrorBody{Code: "OUT_OF_STOCK", Message: "only 2", RequestID: "r-2"}},
}

func schemaOf(t *testing.T, docs map[string]*openapi3.T, doc, name string) *openapi3.Schema {
	t.Helper()
	ref := docs[doc].Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		t.Fatalf("%s has no schema %s", doc, name)
	}
	return ref.Value
}

// TestExamplesSatisfyThePublishedSchemas marshals a value of every contract
// type and validates it against its schema in the published document.
func TestExamplesSatisfyThePublishedSchemas(t *testing.T) {
	t.Parallel()
	docs := loadPublished(t)
	for _, c := range contractTypes {
		b, err := json.Marshal(c.value)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		if err := schemaOf(t, docs, c.doc, c.schema).VisitJSON(v); err != nil {
			t.Errorf("%s %s: %s does not satisfy the schema: %v", c.doc, c.schema, b, err)
		}
	}
	// The last page omits nextCursor (never null) and an order outside the
	// legacy omits legacyOrderNo.
	b, _ := json.Marshal(Page[Order]{Items: []Order{{Lines: []OrderLine{}}}})
	if strings.Contains(string(b), "nextCursor") || strings.Contains(string(b), "legacyOrderNo") {
		t.Errorf("optional fields are sent empty: %s", b)
	}
}

// jsonFields returns the JSON names of t's fields and which of them are
// omitempty.
func jsonFields(t reflect.Type) (names []string, optional map[string]bool) {
	optional = map[string]bool{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
		optional[name] = strings.Contains(opts, "omitempty")
	}
	return names, optional
}

// fieldMismatches compares a struct type with an object schema, both ways:
// every schema property needs a field (or a provider could never send it),
// every field a property (or a provider sends what the contract does not
// declare), and a required property must not be omitempty.
func fieldMismatches(s *openapi3.Schema, typ reflect.Type) []string {
	var out []string
	names, optional := jsonFields(typ)
	for prop := range s.Properties {
		if !slices.Contains(names, prop) {
			out = append(out, "property "+prop+" has no field")
		}
	}
	for _, n := range names {
		if _, ok := s.Properties[n]; !ok {
			out = append(out, "field "+n+" is not a property")
		}
	}
	for _, r := range s.Required {
		if optional[r] {
			out = append(out, "required property "+r+" is omitempty")
		}
	}
	slices.Sort(out)
	return out
}

// TestEveryPropertyHasAField holds the Go types to the published schemas
// field by field.
func TestEveryPropertyHasAField(t *testing.T) {
	t.Parallel()
	docs := loadPublished(t)
	for _, c := range contractTypes {
		if m := fieldMismatches(schemaOf(t, docs, c.doc, c.schema), reflect.TypeOf(c.value)); len(m) > 0 {
			t.Errorf("%s %s vs %T: %v", c.doc, c.schema, c.value, m)
		}
	}
}

// TestFieldCheckCatchesASeededDrift proves the check above can fail: a
// Product that lost its version and spells a field differently.
func TestFieldCheckCatchesASeededDrift(t *testing.T) {
	t.Parallel()
	docs := loadPublished(t)
	type driftedProduct struct {
		SKU         string    `json:"sku"`
		Name        string    `json:"name"`
		Description string    `json:"description"`
		Category    string    `json:"category"`
		Price       Money     `json:"price,omitempty"`
		Stock       int64     `json:"stock"`
		Available   bool      `json:"isAvailable"`
		UpdatedAt   time.Time `json:"updatedAt"`
	}
	got := fieldMismatches(schemaOf(t, docs, "catalog-v1", "Product"), reflect.TypeOf(driftedProduct{}))
	want := []string{"field isAvailable is not a property", "property available has no field",
		"property version has no field", "required property price is omitempty"}
	if !slices.Equal(got, want) {
		t.Errorf("mismatches = %q, want %q", got, want)
	}
}

// TestValidateAgreesWithTheSchema: a request Validate accepts satisfies
// PlaceOrderRequest, and the schema's bounds are Validate's.
func TestValidateAgreesWithTheSchema(t *testing.T) {
	t.Parallel()
	schema := schemaOf(t, loadPublished(t), "orders-v1", "PlaceOrderRequest")
	items := func(n, qty int) []PlaceItem {
		out := make([]PlaceItem, n)
		for i := range out {
			out[i] = PlaceItem{Sku: "ART-" + strings.Repeat("1", i+1), Quantity: qty}
		}
		return out
	}
	for _, c := range []struct {
		name  string
		req   PlaceRequest
		valid bool
		field string
	}{
		{"minimal", PlaceRequest{CustomerID: "42", Items: items(1, 1)}, true, ""},
		{"largest", PlaceRequest{CustomerID: strings.Repeat("c", MaxIDLength), Currency: "EUR", Items: items(MaxOrderItems, MaxQuantity)}, true, ""},
		{"no items", PlaceRequest{CustomerID: "42", Items: []PlaceItem{}}, false, "items"},
		{"too many items", PlaceRequest{CustomerID: "42", Items: items(MaxOrderItems+1, 1)}, false, "items"},
		{"quantity 0", PlaceRequest{CustomerID: "42", Items: items(1, 0)}, false, "items[0].quantity"},
		{"quantity over", PlaceRequest{CustomerID: "42", Items: items(1, MaxQuantity+1)}, false, "items[0].quantity"},
		{"long customer", PlaceRequest{CustomerID: strings.Repeat("c", MaxIDLength+1), Items: items(1, 1)}, false, "customerId"},
		{"bad currency", PlaceRequest{CustomerID: "42", Currency: "eur", Items: items(1, 1)}, false, "currency"},
	} {
		err := c.req.Validate()
		var ve *ValidationError
		if c.valid != (err == nil) || (err != nil && !errors.As(err, &ve)) {
			t.Errorf("%s: Validate = %v", c.name, err)
			continue
		}
		b, _ := json.Marshal(c.req)
		var v any
		_ = json.Unmarshal(b, &v)
		if serr := schema.VisitJSON(v); c.valid != (serr == nil) {
			t.Errorf("%s: Validate says valid=%v, the schema %v", c.name, c.valid, serr)
		}
		if ve != nil && ve.Details.(map[string]any)["field"] != c.field {
			t.Errorf("%s: first violation %v, want %s", c.name, ve.Details, c.field)
		}
	}
	// Duplicate SKUs pass the schema but not the contract's rule.
	dup := PlaceRequest{CustomerID: "42", Items: []PlaceItem{{Sku: "A", Quantity: 1}, {Sku: "A", Quantity: 2}}}
	if err := dup.Validate(); err == nil || !strings.Contains(err.Error(), "items[1].sku") {
		t.Errorf("a repeated SKU: %v", err)
	}
}

func TestHashIgnoresSpellingNotContent(t *testing.T) {
	t.Parallel()
	var a, b PlaceRequest
	_ = json.Unmarshal([]byte(`{"customerId":"42","items":[{"sku":"A","quantity":1}]}`), &a)
	_ = json.Unmarshal([]byte(` { "items" : [ {"quantity":1, "sku":"A"} ], "customerId":"42" }`), &b)
	if a.Hash() != b.Hash() {
		t.Error("the same request spelt differently hashes differently")
	}
	b.Items[0].Quantity = 2
	if a.Hash() == b.Hash() {
		t.Error("different quantities hash the same")
	}
}

func TestCursorRoundTripAndTamper(t *testing.T) {
	t.Parallel()
	c := EncodeCursor("ART-1001", "lamps")
	if strings.Contains(c, "ART") {
		t.Errorf("cursor %q exposes the sku: clients must not build cursors", c)
	}
	q, err := ParseListQuery("5", c, "lamps")
	if err != nil || q != (ListQuery{Limit: 5, Category: "lamps", After: "ART-1001"}) {
		t.Errorf("ParseListQuery = %+v, %v", q, err)
	}
	for _, bad := range []struct{ raw, cat, problem string }{
		{c, "", "category mismatch"}, {c[:len(c)-2], "lamps", "invalid"}, {"Yzk", "", "invalid"},
		{EncodeCursor("no spaces", ""), "", "invalid"},
	} {
		_, err := DecodeCursor(bad.raw, bad.cat)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Details != (FieldProblem{Field: "cursor", Problem: bad.problem}) {
			t.Errorf("DecodeCursor(%q, %q) = %v", bad.raw, bad.cat, err)
		}
	}
	for _, bad := range []struct{ limit, cat, field string }{{"0", "", "limit"}, {"101", "", "limit"}, {"x", "", "limit"}, {"", "Lamps", "category"}} {
		_, err := ParseListQuery(bad.limit, "", bad.cat)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Details.(FieldProblem).Field != bad.field {
			t.Errorf("ParseListQuery(%q, %q) = %v", bad.limit, bad.cat, err)
		}
	}
}

func TestIntentRefIsNeverAnOrderID(t *testing.T) {
	t.Parallel()
	r := IntentRef("ord-42-ART-1001-reserve")
	if len(r) != 35 || !strings.HasPrefix(r, "ik-") || r != IntentRef("ord-42-ART-1001-reserve") || r == IntentRef("other") {
		t.Errorf("IntentRef = %q", r)
	}
}
