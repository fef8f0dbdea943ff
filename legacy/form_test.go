package legacy

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestParseOrderForm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		query string
		want  []orderItem
		ext   string
		fail  bool
	}{
		{"item pairs", "cust_no=100001&item=ART-1001:2&item=ART-1002:1", []orderItem{{"ART-1001", 2}, {"ART-1002", 1}}, "", false},
		{"quantity defaults to 1", "cust_no=100001&item=ART-1001", []orderItem{{"ART-1001", 1}}, "", false},
		{"same article merges", "cust_no=100001&item=ART-1001:2&item=art-1001:3", []orderItem{{"ART-1001", 5}}, "", false},
		{"storefront button", "cust_no=100001&art_nr=ART-1005&qty=4", []orderItem{{"ART-1005", 4}}, "", false},
		{"both styles", "cust_no=100001&item=ART-1001:1&art_nr=ART-1005", []orderItem{{"ART-1001", 1}, {"ART-1005", 1}}, "", false},
		{"ext_ref", "cust_no=100001&item=ART-1001:1&ext_ref=new-7f3a", []orderItem{{"ART-1001", 1}}, "new-7f3a", false},
		{"spaces trimmed", "cust_no=+100001+&item=+ART-1001+:+2+", []orderItem{{"ART-1001", 2}}, "", false},
		{"no customer", "item=ART-1001:1", nil, "", true},
		{"no lines", "cust_no=100001", nil, "", true},
		{"qty zero", "cust_no=100001&item=ART-1001:0", nil, "", true},
		{"qty too big", "cust_no=100001&item=ART-1001:1000", nil, "", true},
		{"merged qty too big", "cust_no=100001&item=ART-1001:999&item=ART-1001:1", nil, "", true},
		{"qty not a number", "cust_no=100001&item=ART-1001:zwei", nil, "", true},
		{"bad article chars", "cust_no=100001&item=ART<1001>:1", nil, "", true},
		{"empty article", "cust_no=100001&item=:1", nil, "", true},
		{"two art_nr", "cust_no=100001&art_nr=ART-1&art_nr=ART-2", nil, "", true},
		{"empty ext_ref", "cust_no=100001&item=ART-1:1&ext_ref=", nil, "", true},
		{"two ext_refs", "cust_no=100001&item=ART-1:1&ext_ref=a&ext_ref=b", nil, "", true},
		{"too many lines", "cust_no=100001&item=ART-1:1" + manyLines(50), nil, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			form, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			req, err := parseOrderForm(form)
			if tc.fail {
				var be *bizError
				if !errors.As(err, &be) || be.Code != errBadInput {
					t.Fatalf("got %+v, %v; want E005", req, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(req.Items, tc.want) || req.ExtRef != tc.ext || req.CustNo != "100001" {
				t.Errorf("got %+v, want items %+v ext %q", req, tc.want, tc.ext)
			}
		})
	}
}

func manyLines(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("&item=ART-")
		b.WriteString(strings.Repeat("9", 1+i%5))
		b.WriteString(string(rune('A' + i/5)))
	}
	return b.String()
}

func FuzzParseOrderForm(f *testing.F) {
	for _, s := range []string{
		"cust_no=100001&item=ART-1001:2&item=ART-1002:1",
		"cust_no=100001&art_nr=ART-1005&qty=4&ext_ref=x-1",
		"cust_no=100001&item=ART-1001:999&item=ART-1001:1",
		"cust_no=%zz&item=:",
		"item=ART-1:1:1&cust_no=1&ext_ref=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		form, _ := url.ParseQuery(raw) // keeps what parses, as net/http does
		req, err := parseOrderForm(form)
		if err != nil {
			var be *bizError
			if !errors.As(err, &be) || be.Code != errBadInput || be.Msg == "" {
				t.Fatalf("error %v is not an E005 with a message", err)
			}
			return
		}
		if !allDigits(req.CustNo) || len(req.Items) == 0 || len(req.Items) > maxOrderLines {
			t.Fatalf("accepted %+v", req)
		}
		seen := map[string]bool{}
		for _, it := range req.Items {
			if it.Qty < 1 || it.Qty > maxLineQty || seen[it.ArtNr] || it.ArtNr != strings.ToUpper(strings.TrimSpace(it.ArtNr)) || it.ArtNr == "" {
				t.Fatalf("accepted line %+v in %+v", it, req)
			}
			seen[it.ArtNr] = true
		}
		if req.ExtRef != "" && !printableASCII(req.ExtRef) {
			t.Fatalf("accepted ext_ref %q", req.ExtRef)
		}
	})
}
