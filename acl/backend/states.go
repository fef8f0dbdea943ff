package backend

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ficus-gw/ficus/contracts/providerstate"
)

// providerStates are the Pact provider states of the ACL backend, the same
// names as the catalog's and the order service's (docs/contracts.md). The
// legacy's articles cannot be created through it, so product states check
// that the legacy's seed holds what the state names, and fail with the
// reason when it does not; orders are placed through the backend's own API.
func (b *Backend) providerStates() providerstate.States {
	product := func(ctx context.Context, p map[string]any, minStock int64) error {
		sku := providerstate.String(p, "sku", "ART-1001")
		a, err := b.legacy.Product(ctx, sku)
		if err != nil {
			return fmt.Errorf("%w: the legacy has no product %s: %v", providerstate.ErrNotSatisfiable, sku, err)
		}
		prod, err := b.tr.Product(a)
		if err != nil {
			return err
		}
		if prod.Stock < minStock {
			return fmt.Errorf("%w: the legacy holds %d of %s, the state needs %d", providerstate.ErrNotSatisfiable, prod.Stock, sku, minStock)
		}
		return nil
	}
	return providerstate.States{
		"a product exists":      func(ctx context.Context, p map[string]any) error { return product(ctx, p, 0) },
		"a product is in stock": func(ctx context.Context, p map[string]any) error { return product(ctx, p, 5) },
		"several products exist": func(ctx context.Context, _ map[string]any) error {
			for _, sku := range []string{"ART-1001", "ART-1002", "ART-1003", "ART-1004"} {
				if err := product(ctx, map[string]any{"sku": sku}, 0); err != nil {
					return err
				}
			}
			return nil
		},
		"no such product": func(context.Context, map[string]any) error { return nil },
		"an order was placed with an Idempotency-Key": func(ctx context.Context, p map[string]any) error {
			if err := product(ctx, p, 5); err != nil {
				return err
			}
			st, body, err := providerstate.Call(b.app, http.MethodPost, "/api/v1/orders",
				map[string]string{"Idempotency-Key": providerstate.String(p, "key", "pact-placed-1")},
				map[string]any{"customerId": providerstate.String(p, "customerId", "100001"),
					"items": []any{map[string]any{"sku": providerstate.String(p, "sku", "ART-1001"), "quantity": providerstate.Int(p, "quantity", 1)}}})
			return providerstate.Expect(st, body, err, http.StatusCreated)
		},
		"no such order": func(context.Context, map[string]any) error { return nil },
	}
}
