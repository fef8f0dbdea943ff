package catalog

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkGetProduct measures GET /api/v1/products/{sku} end to end over
// loopback: HTTP parsing, middleware, a SQLite read and JSON encoding.
func BenchmarkGetProduct(b *testing.B) {
	s, err := Open(context.Background(), Config{DBPath: filepath.Join(b.TempDir(), "b.db"), RateLimit: -1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	p := Product{SKU: "ART-1001", Name: "Lamp", Description: "A lamp", Category: "lighting",
		Price: Money{AmountMinor: 4999, Currency: "EUR"}, Stock: 5}
	if _, err := s.upsertProduct(context.Background(), reqMeta{requestID: "seed"}, p, nil); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = s.App().Listener(ln) }()
	defer func() { _ = s.App().ShutdownWithTimeout(5 * time.Second) }()
	client := &http.Client{Timeout: 5 * time.Second}
	url := "http://" + ln.Addr().String() + "/api/v1/products/ART-1001"
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
