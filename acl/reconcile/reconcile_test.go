package reconcile

import (
	"context"
	"strings"
	"testing"
)

func TestPrint(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		rep  Report
		want []string
		ok   bool
	}{
		{"clean", Report{Products: 30, Orders: 200}, []string{"compared 30 products and 200 orders (0 still syncing): 0 difference(s)"}, true},
		{"differences", Report{Products: 1, Orders: 1, Differences: []Difference{
			{Entity: "product", Key: "ART-1001", Kind: Mismatch, Field: "stock", Legacy: "4", New: "5"},
			{Entity: "order", Key: "abc [500201]", Kind: MissingInNew},
		}}, []string{"ENTITY", "ART-1001", "mismatch", "stock", "missing-in-new", "abc [500201]", "2 difference(s)"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			if err := c.rep.Print(&b); err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
			if c.rep.OK() != c.ok {
				t.Errorf("OK() = %v, want %v", c.rep.OK(), c.ok)
			}
		})
	}
}

func TestRunNeedsEveryURL(t *testing.T) {
	t.Parallel()
	if _, err := Run(context.Background(), Options{LegacyURL: "http://127.0.0.1:1"}); err == nil {
		t.Fatal("Run without the new services' URLs succeeded")
	}
}
