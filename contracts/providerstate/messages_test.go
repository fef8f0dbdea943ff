package providerstate_test

import (
	"context"
	"encoding/base64"
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

type produced struct {
	typ     string
	version int
}

func newMessagesApp(asked *[]produced) *fiber.App {
	app := fiber.New(fiber.Config{ErrorHandler: apierr.Handler(slog.New(slog.DiscardHandler)), DisableStartupMessage: true})
	app.Use(apierr.RequestIDMiddleware(func() string { return "rid" }))
	providerstate.MountMessages(app, func(_ context.Context, typ string, version int) ([]byte, bool, error) {
		*asked = append(*asked, produced{typ, version})
		switch {
		case version > 2:
			return nil, false, providerstate.ErrNoSuchVersion
		case typ == "order.created":
			return []byte(`{"type":"order.created"}`), true, nil
		}
		return nil, false, nil
	}, slog.New(slog.DiscardHandler))
	return app
}

// The message endpoint parses type and version from the description and
// answers the produced event with Pact's metadata header; it refuses what
// it cannot produce with a structured 400, and other addresses with 404.
func TestMessagesEndpoint(t *testing.T) {
	var asked []produced
	app := newMessagesApp(&asked)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.ShutdownWithTimeout(2 * time.Second) })
	url := "http://" + ln.Addr().String() + providerstate.MessagesPath
	client := &http.Client{Timeout: 5 * time.Second}
	post := func(body string) (int, string, http.Header) {
		res, err := client.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b), res.Header
	}
	st, body, h := post(`{"description":"an order.created v2 event for a placed order","providerStates":[{"name":"x"}]}`)
	meta, _ := base64.StdEncoding.DecodeString(h.Get("Pact-Message-Metadata"))
	if st != 200 || body != `{"type":"order.created"}` || string(meta) != `{"contentType":"application/json"}` ||
		len(asked) != 1 || asked[0] != (produced{"order.created", 2}) {
		t.Fatalf("message: %d %s meta %s, asked %v", st, body, meta, asked)
	}
	if st, _, _ := post(`{"description":"an order.created event"}`); st != 200 || asked[1].version != 1 {
		t.Fatalf("default version: %d, asked %v", st, asked)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"description":"a placed order"}`, "names no event type"},
		{`{"description":"a stock.changed event"}`, "no stock.changed event was emitted"},
		{`{"description":"an order.created v7 event"}`, "v7"},
		{`nope`, "MALFORMED_REQUEST"},
	} {
		if st, body, _ := post(tc.body); st != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want 400 naming %q", tc.body, st, body, tc.want)
		}
	}
	req := httptest.NewRequest(http.MethodPost, providerstate.MessagesPath, strings.NewReader(`{"description":"an order.created event"}`))
	res, err := app.Test(req, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 404 {
		t.Fatalf("from a non-loopback address: %d", res.StatusCode)
	}
}
