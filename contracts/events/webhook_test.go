package events_test

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/contracts/events"
	"github.com/ficus-gw/ficus/contracts/webhook"
	"github.com/ficus-gw/ficus/newsvc/outbox"
)

// TestSignedDeliveries: the real Catalog delivers to a subscription with a
// secret; a receiver that verifies as docs/contracts.md says accepts every
// delivery, each a valid event; the same delivery with a tampered body, or
// presented after the replay window, is refused.
func TestSignedDeliveries(t *testing.T) {
	validator, err := events.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	key, err := webhook.Key("whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	rejected := 0
	var h *hook
	h = newHook(t, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if err := webhook.Verify(key, r.Header, body, time.Now(), 0); err != nil {
			h.mu.Lock()
			rejected++
			h.mu.Unlock()
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return false
		}
		return true
	})
	s := startServices(t, []outbox.Subscriber{{Name: "search", URL: h.srv.URL, Key: key}}, nil)
	s.must(http.StatusCreated, http.MethodPut, s.catalog+"/api/v1/products/ART-1001",
		map[string]any{"name": "Desk lamp", "category": "lighting",
			"price": map[string]any{"amountMinor": 4999, "currency": "EUR"}, "stock": 10})
	bodies, hdrs := h.wait(t, 2) // product.updated and stock.changed
	for i, b := range bodies {
		if _, err := validator.Validate(b); err != nil {
			t.Errorf("delivery %d: %v", i, err)
		}
		if hdrs[i].Get(webhook.HeaderID) != decode(t, b)["eventId"] {
			t.Errorf("webhook-id %q is not the eventId", hdrs[i].Get(webhook.HeaderID))
		}
	}
	h.mu.Lock()
	if rejected != 0 {
		t.Errorf("the receiver rejected %d genuine deliveries", rejected)
	}
	h.mu.Unlock()

	tampered := bytes.Replace(bodies[0], []byte(`"ART-1001"`), []byte(`"ART-9999"`), 1)
	if bytes.Equal(tampered, bodies[0]) {
		t.Fatal("nothing to tamper with")
	}
	if err := webhook.Verify(key, hdrs[0], tampered, time.Now(), 0); !errors.Is(err, webhook.ErrBadSignature) {
		t.Errorf("tampered body: %v, want ErrBadSignature", err)
	}
	if err := webhook.Verify(key, hdrs[0], bodies[0], time.Now().Add(webhook.DefaultTolerance+time.Minute), 0); !errors.Is(err, webhook.ErrOutsideWindow) {
		t.Errorf("replayed after the window: %v, want ErrOutsideWindow", err)
	}
	if err := webhook.Verify([]byte("another secret"), hdrs[0], bodies[0], time.Now(), 0); !errors.Is(err, webhook.ErrBadSignature) {
		t.Errorf("another secret: %v, want ErrBadSignature", err)
	}
}
