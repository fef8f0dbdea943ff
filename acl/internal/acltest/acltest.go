// Package acltest starts the real components the ACL talks to (the legacy
// shop, the catalog and order services) on loopback listeners for tests,
// each with its own SQLite file in the test's temporary directory.
package acltest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/legacy"
	"github.com/ficus-gw/ficus/newsvc/catalog"
	"github.com/ficus-gw/ficus/newsvc/order"
)

// Legacy starts a legacy shop seeded with products articles and returns its
// URL.
func Legacy(t testing.TB, products int) (string, *legacy.Shop) {
	t.Helper()
	shop, err := legacy.Open(context.Background(), legacy.Config{
		DBPath: filepath.Join(t.TempDir(), "legacy.db"), Products: products,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(shop.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = shop.Close()
	})
	return srv.URL, shop
}

// Serve serves a Fiber app on 127.0.0.1:0 until the test ends and returns
// its URL.
func Serve(t testing.TB, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Listener(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = app.ShutdownWithContext(ctx)
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, net.ErrClosed) {
				t.Errorf("serving: %v", err)
			}
		case <-ctx.Done():
			t.Error("app did not stop")
		}
	})
	return "http://" + ln.Addr().String()
}

// Catalog starts a catalog service (rate limiting off) and returns its URL.
func Catalog(t testing.TB) string {
	t.Helper()
	svc, err := catalog.Open(context.Background(), catalog.Config{
		DBPath: filepath.Join(t.TempDir(), "catalog.db"), RateLimit: -1,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := Serve(t, svc.App())
	t.Cleanup(func() { _ = svc.Close() })
	return u
}

// Orders starts an order service against catalogURL (rate limiting off).
func Orders(t testing.TB, catalogURL string) (string, *order.Service) {
	t.Helper()
	return OrdersAt(t, catalogURL, filepath.Join(t.TempDir(), "order.db"))
}

// OrdersAt is Orders with its SQLite file at dbPath, for tests that look
// into (or tamper with) the service's own tables.
func OrdersAt(t testing.TB, catalogURL, dbPath string) (string, *order.Service) {
	t.Helper()
	svc, err := order.Open(context.Background(), order.Config{
		DBPath: dbPath, CatalogURL: catalogURL, RatePerSecond: -1,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := Serve(t, svc.App())
	t.Cleanup(func() { _ = svc.Close() })
	return u, svc
}

// Client is an HTTP client with a timeout, for tests.
func Client() *http.Client { return &http.Client{Timeout: 10 * time.Second} }
