package e2e

import (
	"fmt"
	"testing"

	"github.com/ficus-gw/ficus/internal/faultproxy"
)

func orderBody(customer, sku string, qty int) []byte {
	return fmt.Appendf(nil, `{"customerId":%q,"items":[{"sku":%q,"quantity":%d}]}`, customer, sku, qty)
}

// TestOneOrderPerIntent replays, through the real gateway and real
// services in their own processes, the three ways one Idempotency-Key used
// to become two orders: a retry that crosses from the new side to the
// legacy one, a retry that crosses back, and a retry after a canary move.
// Each must end as one order, named by every 2xx the client received.
func TestOneOrderPerIntent(t *testing.T) {
	s := startStack(t, stackOptions{affinity: true})
	const customer = "100003"
	before, _ := s.settle(customer)
	want := map[string]bool{}
	for id := range before {
		want[id] = true
	}
	must := func(a answer, status int, backend, what string) answer {
		t.Helper()
		if a.err != nil || a.status != status || (backend != "" && a.backend != backend) || (status == 201 && a.orderID == "") {
			t.Fatalf("%s: got status %d backend %q code %q err %v; want %d from %q", what, a.status, a.backend, a.code, a.err, status, backend)
		}
		return a
	}

	t.Run("placed at canary 0, retried at canary 100: the retry goes to the legacy", func(t *testing.T) {
		s.canary(0)
		body := orderBody(customer, "ART-1003", 1)
		first := must(s.placeOrder("repro-3", "u-3", body), 201, "legacy", "first attempt")
		s.canary(100)
		again := must(s.placeOrder("repro-3", "u-3", body), 201, "legacy", "retry after the canary moved")
		if again.orderID != first.orderID {
			t.Fatalf("replay named order %s, the first answer %s", again.orderID, first.orderID)
		}
		// A different body under the same key is refused by the side that
		// holds the key, whatever the canary says.
		reuse := must(s.placeOrder("repro-3", "u-3", orderBody(customer, "ART-1003", 2)), 409, "legacy", "same key, other body")
		if reuse.code != "IDEMPOTENCY_KEY_REUSED" {
			t.Fatalf("reuse code %q", reuse.code)
		}
		want[first.orderID] = true
	})

	// The order matters: the fallback case needs a gateway that holds no
	// pooled connection to the order service yet, so that "down" is a
	// refused connection (provably not sent) rather than a broken pooled
	// one (maybe sent), which no side may be retried on.
	t.Run("placed on the legacy by fallback while the new side is down: the retry stays on the legacy", func(t *testing.T) {
		s.canary(100)
		if err := s.ordersProxy.Set(faultproxy.Fault{Kind: faultproxy.Refuse}); err != nil {
			t.Fatal(err)
		}
		body := orderBody(customer, "ART-1002", 1)
		first := must(s.placeOrder("repro-2", "u-2", body), 201, "legacy", "first attempt (fallback)")
		if first.fallback == "" {
			t.Fatal("the first attempt was not a fallback")
		}
		if err := s.ordersProxy.Set(faultproxy.Fault{}); err != nil {
			t.Fatal(err)
		}
		again := must(s.placeOrder("repro-2", "u-2", body), 201, "legacy", "retry once the new side is back")
		if again.orderID != first.orderID {
			t.Fatalf("replay named order %s, the first answer %s", again.orderID, first.orderID)
		}
		want[first.orderID] = true
	})

	t.Run("placed on the new side, which then goes down: the retry is refused, not booked on the legacy", func(t *testing.T) {
		s.canary(100)
		body := orderBody(customer, "ART-1001", 1)
		first := must(s.placeOrder("repro-1", "u-1", body), 201, "new", "first attempt")
		if err := s.ordersProxy.Set(faultproxy.Fault{Kind: faultproxy.Refuse}); err != nil {
			t.Fatal(err)
		}
		// The first retry may meet a pooled connection the outage broke
		// (502, the request may have arrived); later ones find the service
		// refusing connections. None may book the order on the legacy.
		var retry answer
		for range 3 {
			retry = s.placeOrder("repro-1", "u-1", body)
			if retry.err != nil || retry.status < 500 {
				t.Fatalf("retry while the order service is down: status %d backend %q err %v; want a 5xx", retry.status, retry.backend, retry.err)
			}
		}
		if retry.status != 503 || retry.code != "IDEMPOTENCY_SIDE_UNAVAILABLE" {
			t.Fatalf("retry while down: %d %q, want 503 IDEMPOTENCY_SIDE_UNAVAILABLE", retry.status, retry.code)
		}
		if err := s.ordersProxy.Set(faultproxy.Fault{}); err != nil {
			t.Fatal(err)
		}
		again := must(s.placeOrder("repro-1", "u-1", body), 201, "new", "retry once the service is back")
		if again.orderID != first.orderID {
			t.Fatalf("replay named order %s, the first answer %s", again.orderID, first.orderID)
		}
		want[first.orderID] = true
	})

	newSide, _ := s.settle(customer)
	if !sameSet(newSide, want) {
		t.Fatalf("after settling, the customer's orders are not exactly the ones clients were told about:\nunexpected: %v\nmissing: %v",
			minus(newSide, want), minus(want, newSide))
	}
}
