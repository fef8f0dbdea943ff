package catalog

import (
	"context"
	"net/http"

	"github.com/google/uuid"

	"github.com/ficus-gw/ficus/contracts/providerstate"
)

// providerStates are the Pact provider states of the catalog (see
// docs/contracts.md, "Verifying the contract with Pact"). Each puts its data
// in place through the catalog's own API.
func (s *Service) providerStates() providerstate.States {
	put := func(sku string, stock int) error {
		st, body, err := providerstate.Call(s.app, http.MethodPut, "/api/v1/products/"+sku, nil, map[string]any{
			"name": "Desk lamp", "description": "Brass, E27", "category": "lighting",
			"price": map[string]any{"amountMinor": 4999, "currency": "EUR"}, "stock": stock,
		})
		return providerstate.Expect(st, body, err, http.StatusOK, http.StatusCreated)
	}
	return providerstate.States{
		"a product exists": func(_ context.Context, p map[string]any) error {
			return put(providerstate.String(p, "sku", "ART-1001"), providerstate.Int(p, "stock", 100))
		},
		"a product is in stock": func(_ context.Context, p map[string]any) error {
			return put(providerstate.String(p, "sku", "ART-1001"), providerstate.Int(p, "stock", 1000))
		},
		"several products exist": func(context.Context, map[string]any) error {
			for _, sku := range []string{"ART-1001", "ART-1002", "ART-1003", "ART-1004"} {
				if err := put(sku, 100); err != nil {
					return err
				}
			}
			return nil
		},
		// For message pacts: a fresh reservation each time, so the latest
		// stock.changed is this one (reason order-reserved).
		"stock was reserved for an order": func(_ context.Context, p map[string]any) error {
			sku := providerstate.String(p, "sku", "ART-1001")
			if err := put(sku, 1000); err != nil {
				return err
			}
			st, body, err := providerstate.Call(s.app, http.MethodPost, "/api/v1/products/"+sku+"/stock-adjustments",
				map[string]string{"Idempotency-Key": "pact-" + uuid.NewString()},
				map[string]any{"delta": -providerstate.Int(p, "quantity", 2), "reason": "order-reserved",
					"reference": providerstate.String(p, "reference", "ord-pact-1")})
			return providerstate.Expect(st, body, err, http.StatusCreated)
		},
		// Nothing to do: pacts name a SKU no provider has.
		"no such product": func(context.Context, map[string]any) error { return nil },
	}
}
