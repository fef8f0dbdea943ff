package providerstate_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/contracts/providerstate"
)

func newApp(calls *[]string) *fiber.App {
	app := fiber.New(fiber.Config{ErrorHandler: apierr.Handler(slog.New(slog.DiscardHandler)), DisableStartupMessage: true})
	app.Use(apierr.RequestIDMiddleware(func() string { return "rid" }))
	providerstate.Mount(app, providerstate.States{
		"a product exists": func(_ context.Context, p map[string]any) error {
			*calls = append(*calls, providerstate.String(p, "sku", "none"))
			return nil
		},
		"broken": func(context.Context, map[string]any) error { return errors.New("no legacy") },
	}, slog.New(slog.DiscardHandler))
	return app
}

func TestProviderStatesOnLoopbackOnly(t *testing.T) {
	var calls []string
	app := newApp(&calls)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.ShutdownWithTimeout(2 * time.Second) })
	url := "http://" + ln.Addr().String() + providerstate.Path
	client := &http.Client{Timeout: 5 * time.Second}
	post := func(body string) (int, string) {
		res, err := client.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if st, body := post(`{"state":"a product exists","params":{"sku":"ART-7"},"action":"setup"}`); st != 204 || len(calls) != 1 || calls[0] != "ART-7" {
		t.Fatalf("setup: %d %s, calls %v", st, body, calls)
	}
	if st, _ := post(`{"state":"a product exists","action":"teardown"}`); st != 204 || len(calls) != 1 {
		t.Fatalf("teardown: %d, calls %v (teardown must not set up)", st, calls)
	}
	if st, body := post(`{"state":"a unicorn exists"}`); st != 400 || !strings.Contains(body, "VALIDATION_FAILED") || !strings.Contains(body, "a product exists") {
		t.Fatalf("unknown state: %d %s", st, body)
	}
	if st, body := post(`{"state":"broken"}`); st != 500 || !strings.Contains(body, "no legacy") {
		t.Fatalf("failed setup: %d %s", st, body)
	}
	if st, body := post(`not json`); st != 400 || !strings.Contains(body, "MALFORMED_REQUEST") {
		t.Fatalf("malformed: %d %s", st, body)
	}
}

// A request from a non-loopback address is answered as if the endpoint did
// not exist and sets nothing up. fiber's App.Test serves from 0.0.0.0.
func TestProviderStatesRefuseOtherAddresses(t *testing.T) {
	var calls []string
	app := newApp(&calls)
	req := httptest.NewRequest(http.MethodPost, providerstate.Path, strings.NewReader(`{"state":"a product exists"}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := app.Test(req, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 404 || len(calls) != 0 {
		t.Fatalf("from a non-loopback address: %d, calls %v", res.StatusCode, calls)
	}
}
