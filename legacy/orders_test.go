package legacy

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
)

func TestStatusTransitions(t *testing.T) {
	t.Parallel()
	s := openShop(t, Config{})
	srv := serve(t, s)

	// Seeded orders in status 1 (no stock reserved), one per subtest.
	var newOrders []string
	for _, o := range decode[orderExport](t, get(t, srv, "/shop/export/orders.do", vals("max", "1000"))).Orders {
		if o.StsCd == stsNew {
			newOrders = append(newOrders, o.OrdNo)
		}
	}
	if len(newOrders) < 3 {
		t.Fatalf("seed has only %d orders in status 1", len(newOrders))
	}

	actions := map[string]string{"pay": "/shop/payOrder.do", "ship": "/shop/shipOrder.do", "cancel": "/shop/cancelOrder.do"}
	// setup brings a fresh order of 2 units of art into the given status.
	setup := map[int][]string{
		stsReserved:  nil,
		stsPaid:      {"pay"},
		stsShipped:   {"pay", "ship"},
		stsCancelled: {"cancel"},
	}
	tests := []struct {
		from       int
		action     string
		wantSts    int // 0 when the transition is illegal
		stockDelta int // change of the article's stock by the action
	}{
		{stsNew, "pay", 0, 0},
		{stsNew, "ship", 0, 0},
		{stsNew, "cancel", stsCancelled, 0},
		{stsReserved, "pay", stsPaid, 0},
		{stsReserved, "ship", 0, 0},
		{stsReserved, "cancel", stsCancelled, 2},
		{stsPaid, "pay", 0, 0},
		{stsPaid, "ship", stsShipped, 0},
		{stsPaid, "cancel", stsCancelled, 2},
		{stsShipped, "pay", 0, 0},
		{stsShipped, "ship", 0, 0},
		{stsShipped, "cancel", 0, 0},
		{stsCancelled, "pay", 0, 0},
		{stsCancelled, "ship", 0, 0},
		{stsCancelled, "cancel", 0, 0},
	}
	// Subtests run one after another: stock is compared before and after.
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%d_%s", tc.from, tc.action), func(t *testing.T) {
			var ordNo string
			var arts []string
			if tc.from == stsNew {
				ordNo, newOrders = newOrders[0], newOrders[1:]
				for _, p := range decode[xmlAuftrag](t, get(t, srv, "/shop/orderStatus.do", vals("ord_no", ordNo))).Positionen {
					arts = append(arts, p.ArtNr)
				}
			} else {
				art := "ART-" + strconv.Itoa(1101+i)
				arts = []string{art}
				setStock(t, s, art, 10)
				ordNo = decode[xmlAuftrag](t, post(t, srv, "/shop/placeOrder.do", vals("cust_no", aCustomer, "item", art+":2"))).OrdNo
				for _, a := range setup[tc.from] {
					decode[xmlAuftrag](t, post(t, srv, actions[a], vals("ord_no", ordNo)))
				}
			}
			before := map[string]int{}
			for _, a := range arts {
				before[a] = stockOf(t, srv, a)
			}
			r := post(t, srv, actions[tc.action], vals("ord_no", ordNo))
			if tc.wantSts == 0 {
				wantError(t, r, errIllegalTransition)
			} else if got := decode[xmlAuftrag](t, r); got.StsCd != tc.wantSts || got.StsTxt != statusText[tc.wantSts] {
				t.Errorf("status %d %q, want %d", got.StsCd, got.StsTxt, tc.wantSts)
			}
			after := decode[xmlAuftrag](t, get(t, srv, "/shop/orderStatus.do", vals("ord_no", ordNo)))
			wantSts := tc.wantSts
			if wantSts == 0 {
				wantSts = tc.from
			}
			if after.StsCd != wantSts {
				t.Errorf("stored status %d, want %d", after.StsCd, wantSts)
			}
			for _, a := range arts {
				if got := stockOf(t, srv, a) - before[a]; got != tc.stockDelta {
					t.Errorf("stock of %s changed by %d, want %d", a, got, tc.stockDelta)
				}
			}
		})
	}
	t.Run("unknown order", func(t *testing.T) {
		for _, p := range actions {
			wantError(t, post(t, srv, p, vals("ord_no", "42")), errUnknownOrder)
			wantError(t, post(t, srv, p, vals("ord_no", "")), errBadInput)
		}
	})
}

func TestConcurrentOrdersDoNotOversell(t *testing.T) {
	t.Parallel()
	s := openShop(t, Config{Products: 20})
	srv := serve(t, s)
	const art, stock, buyers = "ART-1007", 10, 50
	setStock(t, s, art, stock)

	var wg sync.WaitGroup
	results := make(chan response, buyers)
	start := make(chan struct{})
	for range buyers {
		wg.Go(func() {
			<-start
			r, err := fetch(srv, http.MethodPost, "/shop/placeOrder.do", vals("cust_no", aCustomer, "item", art+":1"))
			if err != nil {
				t.Error(err)
			}
			results <- r
		})
	}
	close(start)
	wg.Wait()
	close(results)
	placed, refused := map[string]bool{}, 0
	for r := range results {
		switch code := errorCode(r); code {
		case "":
			placed[decode[xmlAuftrag](t, r).OrdNo] = true
		case errInsufficientStock:
			refused++
		default:
			t.Errorf("unexpected answer %d %s", r.status, r.body)
		}
	}
	if len(placed) != stock || refused != buyers-stock {
		t.Fatalf("%d distinct orders placed and %d refused; want %d and %d", len(placed), refused, stock, buyers-stock)
	}
	if got := stockOf(t, srv, art); got != 0 {
		t.Fatalf("stock ends at %d, want 0", got)
	}
	for ordNo := range placed {
		decode[xmlAuftrag](t, post(t, srv, "/shop/cancelOrder.do", vals("ord_no", ordNo)))
		break
	}
	if got := stockOf(t, srv, art); got != 1 {
		t.Errorf("stock after one cancel is %d, want 1", got)
	}
}

func TestExtRefMakesPlaceOrderIdempotent(t *testing.T) {
	t.Parallel()
	s := openShop(t, Config{Products: 20})
	srv := serve(t, s)
	setStock(t, s, "ART-1004", 100)
	form := func(ref, cust string) url.Values {
		return vals("cust_no", cust, "item", "ART-1004:3", "ext_ref", ref)
	}

	t.Run("sequential", func(t *testing.T) {
		first := decode[xmlAuftrag](t, post(t, srv, "/shop/placeOrder.do", form("new-1", aCustomer)))
		again := decode[xmlAuftrag](t, post(t, srv, "/shop/placeOrder.do", form("new-1", aCustomer)))
		if first.Wiederholt != "" || again.Wiederholt != "J" {
			t.Errorf("wiederholt first=%q again=%q, want \"\" and J", first.Wiederholt, again.Wiederholt)
		}
		if again.OrdNo != first.OrdNo || again.ExtRef != "new-1" || again.ChgSeq != first.ChgSeq {
			t.Errorf("replay returned %+v, want order %s unchanged", again, first.OrdNo)
		}
		if got := stockOf(t, srv, "ART-1004"); got != 97 {
			t.Errorf("stock %d, want 97: a replay must not reserve again", got)
		}
		wantError(t, post(t, srv, "/shop/placeOrder.do", form("new-1", "100002")), errExtRefConflict)
		wantError(t, post(t, srv, "/shop/placeOrder.do", form("has space", aCustomer)), errBadInput)
	})

	t.Run("concurrent", func(t *testing.T) {
		before := stockOf(t, srv, "ART-1004")
		const n = 20
		var wg sync.WaitGroup
		out := make(chan response, n)
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				r, err := fetch(srv, http.MethodPost, "/shop/placeOrder.do", form("new-2", aCustomer))
				if err != nil {
					t.Error(err)
				}
				out <- r
			})
		}
		close(start)
		wg.Wait()
		close(out)
		ords, fresh := map[string]bool{}, 0
		for r := range out {
			o := decode[xmlAuftrag](t, r)
			ords[o.OrdNo] = true
			if o.Wiederholt == "" {
				fresh++
			}
		}
		if len(ords) != 1 || fresh != 1 {
			t.Errorf("%d distinct orders, %d not marked as replay; want 1 and 1", len(ords), fresh)
		}
		if got := stockOf(t, srv, "ART-1004"); got != before-3 {
			t.Errorf("stock %d, want %d", got, before-3)
		}
	})
}
