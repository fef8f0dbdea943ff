package catalog_test

import (
	"net/http"
	"testing"

	"github.com/ficus-gw/ficus/apierr"
)

// FuzzProductWrite sends arbitrary bodies to PUT over loopback: whatever
// arrives, the answer is within the contract (checked by env.do against
// openapi.yaml) and is a product or a structured 4xx, never a 5xx.
func FuzzProductWrite(f *testing.F) {
	for _, seed := range []string{
		`{"name":"Chair","category":"furniture","price":{"amountMinor":100,"currency":"EUR"},"stock":1}`,
		`{"name":1}`, `[]`, `null`, `{"price":{"amountMinor":-1}}`, `{"a":{"b":{"c":[[[[]]]]}}}`, `"x"`,
		`{"stock":1e400}`, `{"name":"\ud800"}`, `{"name":"a","name":"b"}`,
	} {
		f.Add([]byte(seed))
	}
	shared := newEnv(f, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		e := *shared
		e.t = t
		r := e.do(http.MethodPut, "/api/v1/products/FZ-1", body, nil)
		if r.status >= 500 {
			t.Fatalf("status %d for %q", r.status, body)
		}
		if r.status >= 400 {
			if b := r.errBody(t); b.Code == "" || b.Message == "" || b.Code == apierr.CodeInternal {
				t.Fatalf("unstructured %d for %q: %s", r.status, body, r.body)
			}
		}
	})
}
