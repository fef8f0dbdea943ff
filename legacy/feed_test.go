package legacy

import (
	"strconv"
	"testing"
	"time"
)

// drain pages through a feed from since until mehr=N and returns every
// entry's chg_seq and key, plus the final token.
func drain(t *testing.T, get func(since int64) orderExport, since int64) (seqs []int64, keys []string, next int64) {
	t.Helper()
	for range 1000 {
		page := get(since)
		for _, o := range page.Orders {
			seqs = append(seqs, o.ChgSeq)
			keys = append(keys, o.OrdNo)
		}
		for _, a := range page.Artikel {
			seqs = append(seqs, a.ChgSeq)
			keys = append(keys, a.ArtNr)
		}
		if page.Next < since {
			t.Fatalf("token went backwards: %d after %d", page.Next, since)
		}
		since = page.Next
		if page.Mehr == "N" {
			return seqs, keys, since
		}
	}
	t.Fatal("feed never ended")
	return nil, nil, 0
}

func TestOrderFeedResumesFromToken(t *testing.T) {
	t.Parallel()
	clock := &testClock{now: testStart}
	s := openShop(t, Config{Products: 30, Now: clock.Now})
	srv := serve(t, s)
	feed := func(since int64) orderExport {
		return decode[orderExport](t, get(t, srv, "/shop/export/orders.do", vals("since", strconv.FormatInt(since, 10), "max", "37")))
	}
	seqs, keys, token := drain(t, feed, 0)
	if len(keys) != seedOrders {
		t.Fatalf("initial sync saw %d orders, want %d", len(keys), seedOrders)
	}
	seen := map[string]bool{}
	for i, k := range keys {
		if seen[k] {
			t.Errorf("order %s delivered twice", k)
		}
		seen[k] = true
		if i > 0 && seqs[i] <= seqs[i-1] {
			t.Errorf("chg_seq not increasing at %d: %d after %d", i, seqs[i], seqs[i-1])
		}
	}

	setStock(t, s, "ART-1002", 10)
	clock.Advance(time.Hour)
	a := decode[xmlAuftrag](t, post(t, srv, "/shop/placeOrder.do", vals("cust_no", aCustomer, "item", "ART-1002:1")))
	b := decode[xmlAuftrag](t, post(t, srv, "/shop/placeOrder.do", vals("cust_no", aCustomer, "item", "ART-1002:1")))
	decode[xmlAuftrag](t, post(t, srv, "/shop/payOrder.do", vals("ord_no", a.OrdNo)))

	page := feed(token)
	if len(page.Orders) != 2 || page.Orders[0].OrdNo != b.OrdNo || page.Orders[1].OrdNo != a.OrdNo {
		t.Fatalf("after token %d got %d orders %v; want %s then %s (a changed last)", token, len(page.Orders), page.Orders, b.OrdNo, a.OrdNo)
	}
	if page.Orders[1].StsCd != stsPaid {
		t.Errorf("order %s in feed has status %d, want its latest (7)", a.OrdNo, page.Orders[1].StsCd)
	}
	if page.Next != page.Orders[1].ChgSeq || page.Mehr != "N" {
		t.Errorf("next=%d mehr=%s, want the last entry's chg_seq %d and N", page.Next, page.Mehr, page.Orders[1].ChgSeq)
	}
	empty := feed(page.Next)
	if len(empty.Orders) != 0 || empty.Next != page.Next {
		t.Errorf("caught-up feed returned %d orders and next=%d, want none and %d", len(empty.Orders), empty.Next, page.Next)
	}
}

func TestProductFeedFollowsStock(t *testing.T) {
	t.Parallel()
	s := openShop(t, Config{Products: 30})
	srv := serve(t, s)
	feed := func(since int64) orderExport {
		return decode[orderExport](t, get(t, srv, "/shop/export/products.do", vals("since", strconv.FormatInt(since, 10), "max", "7")))
	}
	_, keys, token := drain(t, feed, 0)
	if len(keys) != 30 {
		t.Fatalf("initial product sync saw %d articles, want 30", len(keys))
	}
	setStock(t, s, "ART-1003", 10)
	setStock(t, s, "ART-1009", 10)
	o := decode[xmlAuftrag](t, post(t, srv, "/shop/placeOrder.do", vals("cust_no", aCustomer, "item", "ART-1009:4", "item", "ART-1003:1")))
	page := feed(token)
	if len(page.Artikel) != 2 || page.Artikel[0].ArtNr != "ART-1009" || page.Artikel[0].Bestand != 6 || page.Artikel[1].Bestand != 9 {
		t.Fatalf("product feed after order: %+v", page.Artikel)
	}
	decode[xmlAuftrag](t, post(t, srv, "/shop/cancelOrder.do", vals("ord_no", o.OrdNo)))
	page = feed(page.Next)
	if len(page.Artikel) != 2 || page.Artikel[0].Bestand != 10 || page.Artikel[1].Bestand != 10 {
		t.Fatalf("product feed after cancel: %+v", page.Artikel)
	}
}

func TestFeedSinceLocalTimestamp(t *testing.T) {
	t.Parallel()
	clock := &testClock{now: testStart}
	s := openShop(t, Config{Products: 30, Now: clock.Now})
	srv := serve(t, s)
	setStock(t, s, "ART-1002", 10)
	clock.Advance(2 * time.Hour)
	o := decode[xmlAuftrag](t, post(t, srv, "/shop/placeOrder.do", vals("cust_no", aCustomer, "item", "ART-1002:1")))
	berlin, _ := time.LoadLocation(DefaultZone)
	since := testStart.Add(time.Hour).In(berlin).Format(dateLayout)
	page := decode[orderExport](t, get(t, srv, "/shop/export/orders.do", vals("since", since)))
	if len(page.Orders) != 1 || page.Orders[0].OrdNo != o.OrdNo || page.Next != page.Orders[0].ChgSeq {
		t.Fatalf("since %s: %d orders, next %d; want only %s", since, len(page.Orders), page.Next, o.OrdNo)
	}
	later := clock.Now().Add(time.Hour).In(berlin).Format(dateLayout)
	none := decode[orderExport](t, get(t, srv, "/shop/export/orders.do", vals("since", later)))
	head := decode[orderExport](t, get(t, srv, "/shop/export/products.do", vals("since", later)))
	if len(none.Orders) != 0 || none.Next != head.Next || none.Next < o.ChgSeq {
		t.Errorf("empty timestamp query: %d orders, next %d; want none and the current head", len(none.Orders), none.Next)
	}
	for _, bad := range []string{"yesterday", "-1", "2025-03-14T10:00:00Z", "31.02.2025 10:00"} {
		wantError(t, get(t, srv, "/shop/export/orders.do", vals("since", bad)), errBadInput)
	}
	for _, bad := range []string{"0", "1001", "x"} {
		wantError(t, get(t, srv, "/shop/export/products.do", vals("max", bad)), errBadInput)
	}
}
