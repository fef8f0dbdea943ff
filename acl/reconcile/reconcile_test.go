package reconcile

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPrint(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		rep  Report
		want []string
		ok   bool
	}{
		{"clean", Report{Products: 30, Orders: 200}, []string{"compared 30 products and 200 orders (0 still syncing): 0 difference(s)"}, true},
		{"differences", Report{Products: 1, Orders: 1, Differences: []Difference{
			{Entity: "product", Key: "ART-1001", Kind: Mismatch, Field: "stock", Legacy: "4", New: "5"},
			{Entity: "order", Key: "abc [500201]", Kind: MissingInNew},
		}}, []string{"ENTITY", "ART-1001", "mismatch", "stock", "missing-in-new", "abc [500201]", "2 difference(s)"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			if err := c.rep.Print(&b); err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
			if c.rep.OK() != c.ok {
				t.Errorf("OK() = %v, want %v", c.rep.OK(), c.ok)
			}
		})
	}
}

func TestRunNeedsEveryURL(t *testing.T) {
	t.Parallel()
	if _, err := Run(context.Background(), Options{LegacyURL: "http://127.0.0.1:1"}); err == nil {
		t.Fatal("Run without the new services' URLs succeeded")
	}
}

// refusingServer answers 429 (Retry-After: 0) to the first refusals GETs,
// then 200 with {"n":1}, and counts the GETs.
func refusingServer(t *testing.T, refusals int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if int(calls.Add(1)) <= refusals {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"code":"RATE_LIMITED","message":"too many requests"}`)
			return
		}
		_, _ = io.WriteString(w, `{"n":1}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestGetWaitsOutRateLimits(t *testing.T) {
	t.Parallel()
	srv, calls := refusingServer(t, 3)
	r := &run{o: Options{HTTPClient: srv.Client()}}
	var v struct{ N int }
	if err := r.get(context.Background(), srv.URL+"/api/v1/orders/x", &v); err != nil {
		t.Fatalf("get after three 429s: %v", err)
	}
	if v.N != 1 || calls.Load() != 4 {
		t.Fatalf("got %+v after %d GETs, want the answer after 4", v, calls.Load())
	}
}

func TestGetGivesUpOnAServiceThatKeepsRefusing(t *testing.T) {
	t.Parallel()
	srv, calls := refusingServer(t, 1000)
	r := &run{o: Options{HTTPClient: srv.Client()}}
	var v struct{ N int }
	err := r.get(context.Background(), srv.URL+"/api/v1/orders/x", &v)
	if err == nil || !strings.Contains(err.Error(), "HTTP 429") || !strings.Contains(err.Error(), "run reconcile again") {
		t.Fatalf("get against a service that always refuses: %v, want the 429 and what to do", err)
	}
	if calls.Load() != getAttempts {
		t.Fatalf("%d GETs, want %d", calls.Load(), getAttempts)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	for h, want := range map[string]time.Duration{
		"0": 0, "2": 2 * time.Second, " 3 ": 3 * time.Second, "3600": retryAfterCap,
		"": time.Second, "-1": time.Second, "Wed, 21 Oct 2026 07:28:00 GMT": time.Second,
	} {
		if got := retryAfter(h); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}
