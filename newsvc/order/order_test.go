package order

import (
	"errors"
	"math"
	"testing"

	"github.com/ficus-gw/ficus/apierr"
)

func TestStatusTransitions(t *testing.T) {
	t.Parallel()
	statuses := []Status{StatusPlaced, StatusPaid, StatusShipped, StatusCancelled}
	actions := []Action{ActionPay, ActionShip, ActionCancel}
	legal := map[Status]map[Action]Status{
		StatusPlaced: {ActionPay: StatusPaid, ActionCancel: StatusCancelled},
		StatusPaid:   {ActionShip: StatusShipped, ActionCancel: StatusCancelled},
	}
	for _, from := range statuses {
		for _, a := range actions {
			t.Run(string(from)+"/"+string(a), func(t *testing.T) {
				t.Parallel()
				want, wantOK := legal[from][a]
				got, ok := Next(from, a)
				if ok != wantOK || got != want {
					t.Fatalf("%s --%s--> (%q, %v), want (%q, %v)", from, a, got, ok, want, wantOK)
				}
			})
		}
	}
}

func TestPriceLines(t *testing.T) {
	t.Parallel()
	eur := func(n int64) Money { return Money{AmountMinor: n, Currency: "EUR"} }
	tests := []struct {
		name      string
		lines     []Line
		want      int64
		wantLines []int64
		wantErr   bool
	}{
		{"one line", []Line{{Sku: "A", Quantity: 3, UnitPrice: eur(1999)}}, 5997, []int64{5997}, false},
		{"two lines", []Line{{Sku: "A", Quantity: 2, UnitPrice: eur(1999)}, {Sku: "B", Quantity: 3, UnitPrice: eur(500)}}, 5498, []int64{3998, 1500}, false},
		{"free item", []Line{{Sku: "A", Quantity: 1000, UnitPrice: eur(0)}}, 0, []int64{0}, false},
		{"currency mismatch", []Line{{Sku: "A", Quantity: 1, UnitPrice: Money{AmountMinor: 100, Currency: "USD"}}}, 0, nil, true},
		{"line overflow", []Line{{Sku: "A", Quantity: 1000, UnitPrice: eur(math.MaxInt64 / 10)}}, 0, nil, true},
		{"total overflow", []Line{{Sku: "A", Quantity: 1, UnitPrice: eur(math.MaxInt64)}, {Sku: "B", Quantity: 1, UnitPrice: eur(1)}}, 0, nil, true},
		{"negative price", []Line{{Sku: "A", Quantity: 1, UnitPrice: eur(-1)}}, 0, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			total, err := priceLines(tt.lines, "EUR")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if total != eur(tt.want) {
				t.Fatalf("total %+v, want %d EUR", total, tt.want)
			}
			for i, l := range tt.lines {
				if l.LineTotal != eur(tt.wantLines[i]) {
					t.Errorf("line %d total %+v, want %d", i, l.LineTotal, tt.wantLines[i])
				}
			}
		})
	}
	if _, err := priceLines([]Line{{Sku: "A", Quantity: 1000, UnitPrice: eur(math.MaxInt64 / 10)}}, "EUR"); !errors.Is(err, errOverflow) {
		t.Errorf("overflow error = %v, want errOverflow", err)
	}
}

func TestTokenBucket(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	b := newTokenBucket(2, 3, clock.Now)
	for i := range 3 {
		if ok, _ := b.take(); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, retry := b.take()
	if ok || retry != 1 {
		t.Fatalf("4th request: ok=%v retry=%d, want refused with Retry-After 1", ok, retry)
	}
	clock.Advance(500_000_000) // half a second refills one token at 2/s
	if ok, _ := b.take(); !ok {
		t.Fatal("refilled token refused")
	}
	if ok, _ := b.take(); ok {
		t.Fatal("bucket should be empty again")
	}
}

func TestDepth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int
	}{
		{`{}`, 1},
		{`{"a":[{"b":1}]}`, 3},
		{`{"a":"[[[[{{{{"}`, 1},
		{`{"a":"\"[[["}`, 1},
		{`[[[[[]]]]]`, 5},
		{`1`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := apierr.JSONDepth([]byte(tt.in)); got != tt.want {
				t.Fatalf("depth(%s) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	for _, seq := range []int64{1, 42, math.MaxInt64} {
		got, ok := decodeCursor(encodeCursor(seq))
		if !ok || got != seq {
			t.Errorf("cursor of %d decodes to (%d, %v)", seq, got, ok)
		}
	}
	for _, bad := range []string{"", "!!", "bzE6MA", "eDox"} { // "o1:0", "x:1"
		if _, ok := decodeCursor(bad); ok {
			t.Errorf("decodeCursor(%q) accepted", bad)
		}
	}
}
