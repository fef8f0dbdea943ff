package order

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ficus-gw/ficus/contracts/providerstate"
)

// providerStates are the Pact provider states of the order service (see
// docs/contracts.md, "Verifying the contract with Pact"). Products are put in
// the Catalog through its API; orders are placed through this service's own.
func (s *Service) providerStates() providerstate.States {
	client := &http.Client{Timeout: 10 * time.Second}
	inStock := func(ctx context.Context, sku string) error {
		b, _ := json.Marshal(map[string]any{
			"name": "Desk lamp", "description": "Brass, E27", "category": "lighting",
			"price": map[string]any{"amountMinor": 4999, "currency": "EUR"}, "stock": 1000,
		})
		req, err := http.NewRequestWithContext(ctx, http.MethodPut,
			strings.TrimRight(s.cfg.CatalogURL, "/")+"/api/v1/products/"+sku, bytes.NewReader(b))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("putting %s in the catalog: %w", sku, err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return providerstate.Expect(res.StatusCode, body, nil, http.StatusOK, http.StatusCreated)
	}
	return providerstate.States{
		"a product is in stock": func(ctx context.Context, p map[string]any) error {
			return inStock(ctx, providerstate.String(p, "sku", "ART-1001"))
		},
		"an order was placed with an Idempotency-Key": func(ctx context.Context, p map[string]any) error {
			sku := providerstate.String(p, "sku", "ART-1001")
			if err := inStock(ctx, sku); err != nil {
				return err
			}
			st, body, err := providerstate.Call(s.app, http.MethodPost, "/api/v1/orders",
				map[string]string{"Idempotency-Key": providerstate.String(p, "key", "pact-placed-1")},
				map[string]any{"customerId": providerstate.String(p, "customerId", "100001"),
					"items": []any{map[string]any{"sku": sku, "quantity": providerstate.Int(p, "quantity", 1)}}})
			return providerstate.Expect(st, body, err, http.StatusCreated)
		},
		// For message pacts: a new order each time, so the latest
		// order.created is this one.
		"an order was placed": func(ctx context.Context, p map[string]any) error {
			sku := providerstate.String(p, "sku", "ART-1001")
			if err := inStock(ctx, sku); err != nil {
				return err
			}
			st, body, err := providerstate.Call(s.app, http.MethodPost, "/api/v1/orders",
				map[string]string{"Idempotency-Key": "pact-" + uuid.NewString()},
				map[string]any{"customerId": providerstate.String(p, "customerId", "100001"),
					"items": []any{map[string]any{"sku": sku, "quantity": providerstate.Int(p, "quantity", 2)}}})
			return providerstate.Expect(st, body, err, http.StatusCreated)
		},
		// Nothing to do: pacts name an order id no provider has.
		"no such order": func(context.Context, map[string]any) error { return nil },
	}
}
