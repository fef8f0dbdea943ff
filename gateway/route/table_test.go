package route

import (
	"testing"

	"github.com/ficus-gw/ficus/config"
)

func demoTable(t testing.TB) *Table {
	t.Helper()
	cfg, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	tb, err := Compile(cfg.Routes, cfg.DefaultRoute)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestMatch(t *testing.T) {
	t.Parallel()
	tb := demoTable(t)
	cases := []struct{ path, want string }{
		{"/shop/catalog.do", "legacy-catalog"},
		{"/shop/catalog.do/", "legacy-order-actions"}, // not the exact path: falls to the /shop/* prefix
		{"/shop/cancelOrder.do", "legacy-order-actions"},
		{"/shop", "legacy-order-actions"},
		{"/shop/", "legacy-order-actions"},
		{"/shopping", "default"},
		{"/api/v1/products", "products"},
		{"/api/v1/products/", "products"},
		{"/api/v1/products/sku-1", "products"},
		{"/api/v1/productsX", "default"},
		{"/api/v1/orders/42/cancel", "orders"},
		{"/api/v1", "default"},
		{"/", "default"},
		{"/admin", "default"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			if got := tb.Route(tb.Match([]byte(tc.path))).Name; got != tc.want {
				t.Fatalf("Match(%q) = %s, want %s", tc.path, got, tc.want)
			}
		})
	}
}

func TestLongestPrefixWinsAndRootPrefix(t *testing.T) {
	t.Parallel()
	routes := []config.Route{
		{Name: "all", Path: "/*"},
		{Name: "a", Path: "/a/*"},
		{Name: "ab", Path: "/a/b/*"},
		{Name: "abc", Path: "/a/b/c"},
	}
	tb, err := Compile(routes, config.Route{Name: "default", Path: "/*"})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/": "all", "/x": "all", "/a": "a", "/a/x": "a", "/a/b": "ab", "/a/b/c": "abc", "/a/b/c/d": "ab", "/a/bc": "a",
	} {
		if got := tb.Route(tb.Match([]byte(path))).Name; got != want {
			t.Errorf("Match(%q) = %s, want %s", path, got, want)
		}
	}
}

func TestMethods(t *testing.T) {
	t.Parallel()
	tb := demoTable(t)
	r := tb.Route(tb.Match([]byte("/shop/catalog.do")))
	if !r.Allows(GET) || !r.Allows(HEAD) || r.Allows(POST) || r.Allows(OTHER) {
		t.Fatalf("legacy-catalog methods wrong: %+v", r)
	}
	if r.Allow != "GET, HEAD" {
		t.Fatalf("Allow = %q", r.Allow)
	}
	any := tb.Route(tb.Default())
	for m := GET; m < NumMethods; m++ {
		if want := m != TRACE && m != CONNECT; any.Allows(m) != want {
			t.Fatalf("default route: Allows(%s) = %v, want %v (TRACE and CONNECT only when listed)", m, !want, want)
		}
	}
	if any.Allow == "" {
		t.Fatal("a route without a methods list still needs an Allow header for its 405")
	}
	diag, err := Compile([]config.Route{{Name: "diag", Path: "/diag", Methods: []string{"TRACE"}}}, config.Route{Name: "default", Path: "/*"})
	if err != nil {
		t.Fatal(err)
	}
	if d := diag.Route(0); !d.Allows(TRACE) || d.Allows(GET) {
		t.Fatal("a route that lists TRACE must accept it, and only it")
	}
}

func TestCompileRejects(t *testing.T) {
	t.Parallel()
	def := config.Route{Name: "default", Path: "/*"}
	for name, rs := range map[string][]config.Route{
		"unnormalised": {{Name: "x", Path: "/a//b"}},
		"dot segment":  {{Name: "x", Path: "/a/../b/*"}},
		"inner star":   {{Name: "x", Path: "/a/*/b"}},
		"dup prefix":   {{Name: "x", Path: "/a/*"}, {Name: "y", Path: "/a/*"}},
		"bad method":   {{Name: "x", Path: "/a", Methods: []string{"BREW"}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := Compile(rs, def); err == nil {
				t.Fatal("Compile accepted a bad route")
			}
		})
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	tb := demoTable(t)
	paths := [][]byte{[]byte("/shop/catalog.do"), []byte("/api/v1/products/sku-1/reviews"), []byte("/nothing/here")}
	allocs := testing.AllocsPerRun(200, func() {
		for _, p := range paths {
			_ = tb.Match(p)
		}
	})
	if allocs != 0 {
		t.Fatalf("Match allocated %v times", allocs)
	}
}

func BenchmarkMatch(b *testing.B) {
	tb := demoTable(b)
	paths := [][]byte{[]byte("/shop/catalog.do"), []byte("/api/v1/products/sku-1/reviews"), []byte("/nothing/here/at/all")}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = tb.Match(paths[i%len(paths)])
	}
}

func BenchmarkNormalize(b *testing.B) {
	src := []byte("//api/v1/products/./sku-1/../sku-2/%7Ereviews")
	buf := make([]byte, 0, 3*len(src))
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = Normalize(buf, src)
	}
}
