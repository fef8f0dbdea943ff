package acl_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/acl"
	"github.com/ficus-gw/ficus/legacy"
)

// flakyLegacy serves a real legacy shop behind a handler that answers HTTP
// 500 to the first fail requests and counts every request per path.
type flakyLegacy struct {
	shop http.Handler
	fail atomic.Int64
	hits map[string]*atomic.Int64
}

func (f *flakyLegacy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c, ok := f.hits[r.URL.Path]; ok {
		c.Add(1)
	}
	if f.fail.Add(-1) >= 0 {
		http.Error(w, "injected", http.StatusInternalServerError)
		return
	}
	f.shop.ServeHTTP(w, r)
}

func startFlaky(t *testing.T, fail int64) (*flakyLegacy, string) {
	t.Helper()
	shop, err := legacy.Open(context.Background(), legacy.Config{DBPath: filepath.Join(t.TempDir(), "legacy.db"), Products: 30}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &flakyLegacy{shop: shop.Handler(), hits: map[string]*atomic.Int64{}}
	for _, p := range []string{"/shop/productDetail.do", "/shop/cancelOrder.do", "/shop/placeOrder.do"} {
		f.hits[p] = new(atomic.Int64)
	}
	f.fail.Store(fail)
	srv := httptest.NewServer(f)
	t.Cleanup(func() {
		srv.Close()
		_ = shop.Close()
	})
	return f, srv.URL
}

func TestClientRetriesOnlySafeCalls(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		call     func(*acl.Client) error
		path     string
		wantHits int64
		wantOK   bool
	}{
		{"GET is retried", func(c *acl.Client) error { _, err := c.Product(context.Background(), "ART-1001"); return err },
			"/shop/productDetail.do", 3, true},
		{"cancel is not", func(c *acl.Client) error {
			_, err := c.Transition(context.Background(), acl.ActionCancel, "500001")
			return err
		},
			"/shop/cancelOrder.do", 1, false},
		{"place with ext_ref is", func(c *acl.Client) error {
			_, err := c.PlaceOrder(context.Background(), acl.PlaceOrderForm{CustNo: "100001", Items: []acl.Item{{ArtNr: "ART-1001", Qty: 1}}, ExtRef: "r-1"})
			var le *acl.LegacyError
			if errors.As(err, &le) {
				return nil // a business answer (e.g. out of stock) still proves the retry got through
			}
			return err
		}, "/shop/placeOrder.do", 3, true},
		{"place without ext_ref is not", func(c *acl.Client) error {
			_, err := c.PlaceOrder(context.Background(), acl.PlaceOrderForm{CustNo: "100001", Items: []acl.Item{{ArtNr: "ART-1001", Qty: 1}}})
			return err
		}, "/shop/placeOrder.do", 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, u := startFlaky(t, 2)
			client, err := acl.NewClient(acl.ClientConfig{BaseURL: u, Retries: 2, RetryBackoff: time.Millisecond, BreakerFailures: 100}, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = c.call(client)
			if (err == nil) != c.wantOK {
				t.Fatalf("err = %v, want ok=%v", err, c.wantOK)
			}
			if !c.wantOK && !errors.Is(err, acl.ErrUnavailable) {
				t.Fatalf("a 500 must surface as ErrUnavailable, got %v", err)
			}
			if got := f.hits[c.path].Load(); got != c.wantHits {
				t.Fatalf("%s was hit %d times, want %d", c.path, got, c.wantHits)
			}
		})
	}
}

func TestClientBreakerFailsFast(t *testing.T) {
	t.Parallel()
	f, u := startFlaky(t, 1000)
	client, err := acl.NewClient(acl.ClientConfig{BaseURL: u, Retries: -1, BreakerFailures: 3, BreakerOpenFor: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := client.Product(context.Background(), "ART-1001"); !errors.Is(err, acl.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	}
	if got := f.hits["/shop/productDetail.do"].Load(); got != 3 {
		t.Fatalf("the legacy saw %d requests; an open breaker must stop them after 3", got)
	}
}

func TestClientBusinessErrors(t *testing.T) {
	t.Parallel()
	_, u := startFlaky(t, 0)
	client, err := acl.NewClient(acl.ClientConfig{BaseURL: u}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Product(context.Background(), "ART-99999")
	var le *acl.LegacyError
	if !errors.As(err, &le) || le.Code != acl.CodeUnknownArticle {
		t.Fatalf("unknown article: %v, want E001", err)
	}
	if ae := acl.ContractError(acl.OpProduct, err); ae.Code != "NOT_FOUND" {
		t.Fatalf("E001 on a product read became %s", ae.Code)
	}
	if ae := acl.ContractError(acl.OpPlaceOrder, err); ae.Code != "INVALID_ITEM" {
		t.Fatalf("E001 on an order became %s", ae.Code)
	}
}
