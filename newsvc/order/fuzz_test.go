package order

import (
	"errors"
	"testing"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/contracts/api"
)

// FuzzPlaceRequest feeds arbitrary bodies through the strict decoder and
// the validation: whatever arrives, the answer is a structured 4xx or a
// request that satisfies every documented limit, never a panic.
func FuzzPlaceRequest(f *testing.F) {
	for _, seed := range []string{
		`{"customerId":"c","items":[{"sku":"A","quantity":1}]}`,
		`{"customerId":"c","currency":"EUR","items":[{"sku":"A","quantity":1000},{"sku":"B","quantity":1}]}`,
		`{"customerId":"c","items":[{"sku":"A","quantity":1e3}]}`,
		`{"customerId":"c","items":[{"sku":"A","quantity":1,"x":[[[[]]]]}]}`,
		`{"customerId":"\u0000","items":[{"sku":"\"[{","quantity":-0}]}`,
		`[{}]`, `null`, `{}`, `"`, `{"items":[` + "\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req PlaceRequest
		err := decodeJSON(body, "application/json", 4096, &req, true)
		if err == nil {
			err = apierr.Contract(req.Validate()) // as handlePlace answers it
		}
		if err != nil {
			var ae *apierr.Error
			if !errors.As(err, &ae) {
				t.Fatalf("unstructured error %T: %v", err, err)
			}
			if st := apierr.Status(ae.Code); st < 400 || st > 499 || ae.Message == "" {
				t.Fatalf("error %+v has status %d", ae, st)
			}
			return
		}
		if len(req.Items) < 1 || len(req.Items) > api.MaxOrderItems || req.CustomerID == "" {
			t.Fatalf("accepted %+v", req)
		}
		seen := map[string]bool{}
		for _, it := range req.Items {
			if it.Quantity < 1 || it.Quantity > api.MaxQuantity || it.Sku == "" || seen[it.Sku] {
				t.Fatalf("accepted item %+v", it)
			}
			seen[it.Sku] = true
		}
	})
}
