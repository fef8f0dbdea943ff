package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/internal/faultproxy"
)

// intentOutcome is everything a client learnt about one key.
type intentOutcome struct {
	key      string
	sku      string
	attempts int
	orderIDs []string // of every 2xx, in order
	final    answer   // the last answer
}

// matrixStep is a change to the world, applied when the clients have made
// at least `at` attempts (a measure that grows even while every client is
// stuck retrying, so the schedule never waits on the outcome it disturbs).
type matrixStep struct {
	at   int64
	name string
	do   func(s *stack)
}

func setFault(proxy *faultproxy.Proxy, f faultproxy.Fault) func(*stack) {
	return func(s *stack) {
		if err := proxy.Set(f); err != nil {
			s.t.Error(err)
		}
	}
}

// matrixSchedule spreads the faults over n keys: canary moves
// 25->50->100->0, lost answers from the new side, a slow and silent ACL,
// kill -9 of the order service (its sync dies with it) and a restart, a pin
// flip, and a refused order service.
func matrixSchedule(s *stack, n int64) []matrixStep {
	step := func(f float64) int64 { return int64(f * float64(n)) }
	return []matrixStep{
		{step(0.05), "canary 25", func(s *stack) { s.canary(25) }},
		{step(0.10), "new side loses 15% of its answers", setFault(s.ordersProxy, faultproxy.Fault{Kind: faultproxy.ResetAfterSend, Rate: 0.15})},
		{step(0.18), "canary 50", func(s *stack) { s.canary(50) }},
		{step(0.24), "ACL black-holes 5% of connections", setFault(s.aclProxy, faultproxy.Fault{Kind: faultproxy.BlackHole, Rate: 0.05})},
		{step(0.28), "the catalog slows down: orders pile up mid-reservation", setFault(s.catalogProxy, faultproxy.Fault{Kind: faultproxy.Latency, Latency: 150 * time.Millisecond})},
		{step(0.32), "kill -9 the order service and its sync", func(s *stack) { s.orders.kill() }},
		{step(0.40), "restart the order service; the catalog is quick again", func(s *stack) {
			setFault(s.catalogProxy, faultproxy.Fault{})(s)
			s.orders.start()
		}},
		{step(0.48), "canary 100", func(s *stack) { s.canary(100) }},
		{step(0.56), "pin orders to legacy", func(s *stack) { s.ctl("pin", "orders", "legacy", "--reason", "e2e: pin flip") }},
		{step(0.64), "unpin", func(s *stack) { s.ctl("resume", "orders", "--reason", "e2e: pin flip over") }},
		{step(0.70), "order service refuses connections", setFault(s.ordersProxy, faultproxy.Fault{Kind: faultproxy.Refuse})},
		{step(0.76), "order service back, still losing answers", setFault(s.ordersProxy, faultproxy.Fault{Kind: faultproxy.ResetAfterSend, Rate: 0.15})},
		{step(0.82), "canary 0", func(s *stack) { s.canary(0) }},
		{step(0.90), "faults off", func(s *stack) {
			setFault(s.ordersProxy, faultproxy.Fault{})(s)
			setFault(s.aclProxy, faultproxy.Fault{})(s)
		}},
	}
}

// retryable says whether a client should send the same key again.
func retryable(a answer) bool {
	if a.err != nil || a.status >= 500 || a.status == http.StatusTooManyRequests {
		return true
	}
	return a.status == http.StatusConflict && a.code == "IDEMPOTENCY_KEY_IN_USE"
}

// runMatrix places n orders for customer through the gateway with workers
// concurrent clients, each retrying its key until a definitive answer,
// while the schedule breaks things. It returns every key's outcome.
func runMatrix(t *testing.T, s *stack, customer string, skus []string, n, workers int) []*intentOutcome {
	var attempts atomic.Int64
	steps := matrixSchedule(s, int64(n)*11/10)
	stop := make(chan struct{})
	var ctrl sync.WaitGroup
	ctrl.Add(1)
	go func() { // applies each step once its attempt count is reached
		defer ctrl.Done()
		for _, st := range steps {
			for attempts.Load() < st.at {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond): // polling the attempt counter
				}
			}
			t.Logf("after %d attempts: %s", attempts.Load(), st.name)
			st.do(s)
		}
	}()
	outcomes := make([]*intentOutcome, n)
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range outcomes {
		outcomes[i] = &intentOutcome{key: fmt.Sprintf("matrix-%s-%04d", customer, i), sku: skus[rng.IntN(len(skus))]}
	}
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := "matrix-user-" + strconv.Itoa(w)
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				o := outcomes[i]
				body := orderBody(customer, o.sku, 1)
				for o.attempts < 400 {
					o.attempts++
					// Attempts alternate between the two gateway replicas.
					a := s.placeOrderVia(o.attempts%2, o.key, user, body)
					attempts.Add(1)
					o.final = a
					if a.status/100 == 2 {
						o.orderIDs = append(o.orderIDs, a.orderID)
						// A client that got its answer sometimes asks again
						// (a double click): the replay must name the same order.
						if o.attempts%5 != 1 {
							break
						}
						continue
					}
					if !retryable(a) {
						break
					}
					// The client's back-off before a retry: quick at first, then
					// patient enough to outlast an outage and a claim's lease.
					backoff := 20 * time.Millisecond
					if o.attempts > 50 {
						backoff = 200 * time.Millisecond
					}
					time.Sleep(backoff)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	ctrl.Wait()
	// Whatever step the clients did not reach is applied now, so every
	// run ends with every component up and every fault off.
	s.orders.start()
	setFault(s.ordersProxy, faultproxy.Fault{})(s)
	setFault(s.aclProxy, faultproxy.Fault{})(s)
	setFault(s.catalogProxy, faultproxy.Fault{})(s)
	return outcomes
}

type product struct {
	SKU   string `json:"sku"`
	Stock int64  `json:"stock"`
}

func (s *stack) product(base, sku string) (product, error) {
	res, err := s.http.Get(base + "/api/v1/products/" + sku)
	if err != nil {
		return product{}, err
	}
	defer res.Body.Close()
	var p product
	if res.StatusCode != 200 {
		return p, fmt.Errorf("GET %s product %s: %d", base, sku, res.StatusCode)
	}
	return p, json.NewDecoder(res.Body).Decode(&p)
}

// wellStocked returns n skus with plenty of stock in the legacy, and their stock.
func (s *stack) wellStocked(t *testing.T, n int) ([]string, map[string]int64) {
	t.Helper()
	stock := map[string]int64{}
	var skus []string
	for i := 1001; i < 1241 && len(skus) < n; i++ {
		sku := "ART-" + strconv.Itoa(i)
		p, err := s.product(s.aclURL, sku)
		if err == nil && p.Stock >= 60 {
			skus = append(skus, sku)
			stock[sku] = p.Stock
		}
	}
	if len(skus) < n {
		t.Fatalf("only %d well-stocked products", len(skus))
	}
	return skus, stock
}

// settleStock waits (bounded) until the catalog's stock of every sku equals
// the legacy's, and returns the legacy's.
func (s *stack) settleStock(t *testing.T, skus []string) map[string]int64 {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		legacy, differ := map[string]int64{}, []string{}
		var err error
		for _, sku := range skus {
			var l, c product
			if l, err = s.product(s.aclURL, sku); err != nil {
				break
			}
			if c, err = s.product(s.catalogURL, sku); err != nil {
				break
			}
			legacy[sku] = l.Stock
			if l.Stock != c.Stock {
				differ = append(differ, fmt.Sprintf("%s legacy %d catalog %d", sku, l.Stock, c.Stock))
			}
		}
		if err == nil && len(differ) == 0 {
			return legacy
		}
		if time.Now().After(deadline) {
			t.Fatalf("stock did not converge within 60s: %v %v", differ, err)
		}
		time.Sleep(200 * time.Millisecond) // polling while the sync catches up
	}
}

// TestFaultMatrix is the acceptance test of "one order per intent": real
// processes, hundreds of orders retried through lost answers, timeouts, a
// kill -9 of the order service and its sync, canary moves and a pin flip.
// With write affinity nothing is duplicated, lost or left over; without it
// the same run books duplicates, which shows the test can fail.
func TestFaultMatrix(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 150
	}
	if v, err := strconv.Atoi(os.Getenv("FICUS_MATRIX_ORDERS")); err == nil && v > 0 {
		n = v
	}
	t.Run("with write affinity", func(t *testing.T) {
		s := startStack(t, stackOptions{affinity: true})
		const customer = "100011"
		before, _ := s.settle(customer)
		skus, initial := s.wellStocked(t, 20)
		outcomes := runMatrix(t, s, customer, skus, n, 8)

		told := map[string]bool{}
		booked := map[string]int64{} // sku -> orders booked
		var undecided, replayMismatch []string
		for _, o := range outcomes {
			if len(o.orderIDs) == 0 {
				if o.final.status/100 != 4 || o.final.code == "IDEMPOTENCY_KEY_REUSED" {
					undecided = append(undecided, fmt.Sprintf("%s: %d %s %v", o.key, o.final.status, o.final.code, o.final.err))
				}
				continue
			}
			for _, id := range o.orderIDs[1:] {
				if id != o.orderIDs[0] {
					replayMismatch = append(replayMismatch, fmt.Sprintf("%s: %v", o.key, o.orderIDs))
					break
				}
			}
			told[o.orderIDs[0]] = true
			booked[o.sku]++
		}
		if len(undecided) > 0 {
			t.Errorf("%d keys never got a definitive answer: %v", len(undecided), undecided[:min(5, len(undecided))])
		}
		if len(replayMismatch) > 0 {
			t.Errorf("%d keys were answered with two different orders: %v", len(replayMismatch), replayMismatch[:min(5, len(replayMismatch))])
		}
		after, _ := s.settle(customer)
		created := minus(after, before)
		extra, lost := minus(setOf(created), told), minus(told, setOf(created))
		t.Logf("%d keys, %d orders told to clients, %d created in the stores", n, len(told), len(created))
		if len(extra) > 0 {
			t.Errorf("%d orders exist that no client was told about (duplicated intents): %v", len(extra), extra[:min(5, len(extra))])
		}
		if len(lost) > 0 {
			t.Errorf("%d orders a client was told about do not exist: %v", len(lost), lost[:min(5, len(lost))])
		}
		final := s.settleStock(t, skus)
		for _, sku := range skus {
			if want := initial[sku] - booked[sku]; final[sku] != want {
				t.Errorf("stock of %s: %d, want %d (%d before, %d booked)", sku, final[sku], want, initial[sku], booked[sku])
			}
		}
		s.noLeftovers(t, told)
		s.reconcileClean(t)
		log, _ := os.ReadFile(s.orders.log)
		t.Logf("repairs the order service logged: %d stale claims retired, %d finished from their order, %d releases by reference",
			bytes.Count(log, []byte("stale idempotency claim retired")), bytes.Count(log, []byte("stale idempotency claim finished")),
			bytes.Count(log, []byte("stock reservations released by reference")))
	})

	t.Run("without write affinity the same run duplicates orders", func(t *testing.T) {
		s := startStack(t, stackOptions{affinity: false})
		const customer = "100012"
		before, _ := s.settle(customer)
		skus, _ := s.wellStocked(t, 20)
		outcomes := runMatrix(t, s, customer, skus, min(n, 200), 8)
		told := map[string]bool{}
		for _, o := range outcomes {
			if len(o.orderIDs) > 0 {
				told[o.orderIDs[0]] = true
			}
		}
		after, _ := s.settle(customer)
		extra := minus(setOf(minus(after, before)), told)
		t.Logf("without affinity: %d orders exist that no client was told about", len(extra))
		if len(extra) == 0 {
			t.Fatal("the fault matrix found no duplicated intent without write affinity: it cannot tell the fix from its absence")
		}
		// Reconcile sees the duplicates although both stores hold both
		// copies.
		code, rep := s.reconcile(t, 0)
		dups := 0
		for _, d := range rep.Differences {
			if d.Kind == "duplicate-intent" {
				dups++
			}
		}
		if code != 1 || dups == 0 {
			t.Fatalf("reconcile exited %d with %d duplicate-intent difference(s) (%d in all), want exit 1 and some", code, dups, len(rep.Differences))
		}
	})
}

func setOf(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// reconcile runs `ficus ctl reconcile -o json` against the stack, waiting
// (bounded) for the sync to catch up, and returns its exit code and report.
func (s *stack) reconcile(t *testing.T, wait time.Duration) (int, reconcileReport) {
	t.Helper()
	cmd := exec.Command(ficusBin, "ctl", "reconcile", "--legacy", s.legacyURL, "--catalog", s.catalogURL, "--orders", s.ordersURL,
		"--lag", "5s", "--wait", wait.String(), "-o", "json")
	out, err := cmd.Output()
	code, stderr := 0, []byte(nil)
	if ee, ok := err.(*exec.ExitError); ok {
		code, stderr = ee.ExitCode(), ee.Stderr // Output keeps stderr here
	} else if err != nil {
		t.Fatalf("ficus ctl reconcile: %v", err)
	}
	var rep reconcileReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("ficus ctl reconcile -o json printed no report (exit %d): %v\nstdout:\n%s\nstderr:\n%s", code, err, out, stderr)
	}
	return code, rep
}

type reconcileReport struct {
	Orders      int `json:"orders"`
	Differences []struct {
		Entity, Key, Kind, New string
	} `json:"differences"`
}

// reconcileClean fails unless reconcile comes clean.
func (s *stack) reconcileClean(t *testing.T) {
	t.Helper()
	if code, rep := s.reconcile(t, 60*time.Second); code != 0 || len(rep.Differences) > 0 {
		t.Errorf("ficus ctl reconcile exited %d with %d difference(s): %+v", code, len(rep.Differences), rep.Differences[:min(10, len(rep.Differences))])
	}
}

// noLeftovers waits (bounded) until the order service holds no claim
// pending beyond its lease and the Catalog holds stock only for orders that
// exist: what a kill -9 mid-order leaves behind has been repaired.
func (s *stack) noLeftovers(t *testing.T, orders map[string]bool) {
	t.Helper()
	deadline := time.Now().Add(4*leaseForTests + 30*time.Second)
	for {
		var integ struct {
			StaleClaims []struct {
				OrderID string `json:"orderId"`
			} `json:"staleClaims"`
		}
		err := s.getJSON(s.ordersURL+"/internal/v1/integrity?limit=1", &integ)
		var orphans []string
		cursor := ""
		for page := 0; err == nil && page < 100; page++ {
			var res struct {
				Items []struct {
					Reference string `json:"reference"`
					SKU       string `json:"sku"`
				} `json:"items"`
				NextCursor *string `json:"nextCursor"`
			}
			u := s.catalogURL + "/api/v1/stock-reservations?limit=100"
			if cursor != "" {
				u += "&cursor=" + cursor
			}
			if err = s.getJSON(u, &res); err != nil {
				break
			}
			for _, it := range res.Items {
				if !orders[it.Reference] {
					orphans = append(orphans, it.Reference+" "+it.SKU)
				}
			}
			if res.NextCursor == nil || *res.NextCursor == "" {
				break
			}
			cursor = *res.NextCursor
		}
		if err == nil && len(integ.StaleClaims) == 0 && len(orphans) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("leftovers after the run: %d stale claims %+v, %d reservations without an order %v, err %v",
				len(integ.StaleClaims), integ.StaleClaims, len(orphans), orphans, err)
			return
		}
		time.Sleep(250 * time.Millisecond) // polling while the sweeper works
	}
}
