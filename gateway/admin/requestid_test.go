package admin

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/apierr"
)

// TestAuditNeverStoresAClientRequestIDVerbatim: an admin caller's
// X-Request-Id reaches the audit log only when it is a plain id
// ([A-Za-z0-9._-]{1,128}); anything else (a forged log line, markup, an
// oversize value) is replaced by a fresh id before it is stored.
func TestAuditNeverStoresAClientRequestIDVerbatim(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	hostile := []string{
		"x\nlevel=ERROR msg=forged",
		`"><script>alert(1)</script>`,
		strings.Repeat("a", 129),
		"id with spaces",
	}
	for i, id := range hostile {
		req := httptest.NewRequest("PUT", "/admin/routes/products/canary", strings.NewReader(`{"percent":`+itoa(int64(30+i))+`,"reason":"probe"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+operatorToken)
		req.Header[apierr.RequestIDHeader] = []string{id} // set raw: the test client would refuse the newline
		resp, err := f.app.Test(req, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("canary change %d: status %d", i, resp.StatusCode)
		}
	}
	entries := f.audit(t)
	if len(entries) != len(hostile) {
		t.Fatalf("%d audit entries, want %d", len(entries), len(hostile))
	}
	for _, e := range entries {
		if !apierr.ValidRequestID(e.RequestID) {
			t.Errorf("audit stored request id %q", e.RequestID)
		}
		for _, h := range hostile {
			if e.RequestID == h {
				t.Errorf("audit stored the client's id %q verbatim", h)
			}
		}
	}
}
