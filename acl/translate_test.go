package acl

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/newsvc/catalog"
	"github.com/ficus-gw/ficus/newsvc/order"
)

func TestParseMoney(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0,99", 99, true},
		{"12,99", 1299, true},
		{"1.234,50", 123450, true},
		{"1.234.567,89", 123456789, true},
		{" 7,00 ", 700, true},
		{"1234,50", 0, false},
		{"1.23,45", 0, false},
		{"12.99", 0, false},
		{"-1,00", 0, false},
		{"0.000,00", 0, false},
		{"99.999.999.999.999.999,99", 0, false},
		{"", 0, false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseMoney(c.in)
			if c.ok != (err == nil) || got != c.want {
				t.Fatalf("ParseMoney(%q) = %d, %v; want %d, ok=%v", c.in, got, err, c.want, c.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("error %v does not wrap ErrInvalidValue", err)
			}
		})
	}
}

func TestTimeZoneIsConfiguration(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		loc  *time.Location
		in   string
		want string
	}{
		{nil, "14.03.2025 11:30", "2025-03-14T10:30:00Z"},
		{nil, "14.07.2025 11:30", "2025-07-14T09:30:00Z"},
		{nil, "26.10.2025 02:30", "2025-10-26T00:30:00Z"}, // the autumn hour twice: the earlier
		{ny, "14.03.2025 11:30", "2025-03-14T15:30:00Z"},
		{time.UTC, "14.03.2025 11:30", "2025-03-14T11:30:00Z"},
	} {
		tr, err := NewTranslator(c.loc)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tr.Time(c.in)
		if err != nil || got.Format(time.RFC3339) != c.want {
			t.Errorf("Time(%q) in %v = %v, %v; want %s", c.in, tr.Location(), got, err, c.want)
		}
	}
}

func TestStatusTable(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]Status{"1": StatusPlaced, "3": StatusPlaced, "7": StatusPaid, "9": StatusShipped, "99": StatusCancelled} {
		if got, err := StatusFromLegacy(code, ""); err != nil || got != want {
			t.Errorf("status %s = %s, %v; want %s", code, got, err, want)
		}
	}
	for _, code := range []string{"0", "2", "5", "98", "100", "", "PAID"} {
		if _, err := StatusFromLegacy(code, ""); !errors.Is(err, ErrUnknownValue) {
			t.Errorf("status %q: %v, want ErrUnknownValue", code, err)
		}
	}
}

// TestSharedOrderIDs holds the ACL's ids together with the order service's:
// a legacy order must get the same orderId from the ACL backend and from the
// sync's copy in the order service.
func TestSharedOrderIDs(t *testing.T) {
	t.Parallel()
	for _, no := range []string{"500001", "500201", "1"} {
		if got, want := LegacyOrderID(no), order.LegacyOrderID(no); got != want {
			t.Errorf("LegacyOrderID(%s) = %s, order service says %s", no, got, want)
		}
	}
	wb := "0b9ae5a6-7c51-4a8e-9d0f-3f1c2b7d9e10"
	if OrderID("500202", wb) != wb || OrderID("500202", "web-42") != LegacyOrderID("500202") {
		t.Error("OrderID does not prefer a write-back ext_ref")
	}
	for _, key := range []string{"k", strings.Repeat("x y", 40), wb} {
		ref := ExtRefForKey(key)
		if len(ref) > 64 || strings.ContainsAny(ref, " \t") || IsWriteBackRef(ref) {
			t.Errorf("ExtRefForKey(%q) = %q: not a legacy ext_ref, or mistaken for a write-back", key, ref)
		}
	}
	if first, again := ExtRefForKey("a"), ExtRefForKey("a"); first == ExtRefForKey("b") || first != again {
		t.Error("ExtRefForKey is not a function of the key")
	}
	if IsWriteBackRef(strings.ToUpper(wb)) || IsWriteBackRef("web-42") || !IsWriteBackRef(wb) {
		t.Error("IsWriteBackRef accepts only canonical UUIDs")
	}
}

// TestContractTypesMatchNewServices decodes the ACL's output into the new
// services' own types, strictly, and encodes it again: the bytes must not
// change, so clients cannot tell which side answered.
func TestContractTypesMatchNewServices(t *testing.T) {
	t.Parallel()
	tr, err := NewTranslator(nil)
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string, v any) {
		t.Helper()
		raw, err := os.ReadFile(filepath.Join("testdata", "golden", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := DecodeBytes(raw, v); err != nil {
			t.Fatal(err)
		}
	}
	var a Artikel
	read("artikel_full.xml", &a)
	p, err := tr.Product(a)
	if err != nil {
		t.Fatal(err)
	}
	var o Auftrag
	read("auftrag_placed.xml", &o)
	ord, err := tr.Order(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ours   any
		theirs any
	}{{p, &catalog.Product{}}, {ord, &order.Order{}}} {
		ours, _ := json.Marshal(c.ours)
		dec := json.NewDecoder(bytes.NewReader(ours))
		dec.DisallowUnknownFields()
		if err := dec.Decode(c.theirs); err != nil {
			t.Fatalf("%T does not decode into %T: %v", c.ours, c.theirs, err)
		}
		theirs, _ := json.Marshal(c.theirs)
		if !bytes.Equal(ours, theirs) {
			t.Errorf("%T encodes differently from %T:\nours   %s\ntheirs %s", c.ours, c.theirs, ours, theirs)
		}
	}
}

func TestDecodeLimits(t *testing.T) {
	t.Parallel()
	huge := bytes.Repeat([]byte(" "), MaxDocumentBytes+1)
	var a Artikel
	if err := Decode(bytes.NewReader(huge), &a); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized document: %v, want ErrTooLarge", err)
	}
	if err := DecodeBytes([]byte(`<artikel art_nr="ART-1"/><artikel/>`), &a); !errors.Is(err, ErrMalformed) {
		t.Fatalf("two roots: %v, want ErrMalformed", err)
	}
}

func BenchmarkDecodeAndTranslateOrder(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "golden", "auftrag_placed.xml"))
	if err != nil {
		b.Fatal(err)
	}
	tr, err := NewTranslator(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var a Auftrag
		if err := DecodeBytes(raw, &a); err != nil {
			b.Fatal(err)
		}
		if _, err := tr.Order(a); err != nil {
			b.Fatal(err)
		}
	}
}
