package route

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want string
		err  error
	}{
		{in: "/", want: "/"},
		{in: "/shop/catalog.do", want: "/shop/catalog.do"},
		{in: "//shop//catalog.do", want: "/shop/catalog.do"},
		{in: "/shop/../admin", want: "/admin"},
		{in: "/shop/./catalog.do", want: "/shop/catalog.do"},
		{in: "/shop/%2e%2e/x", want: "/x"},
		{in: "/shop/%2E%2e/x", want: "/x"},
		{in: "/shop/.%2e/x", want: "/x"},
		{in: "/shop/%2e/x", want: "/shop/x"},
		{in: "/../../etc/passwd", want: "/etc/passwd"},
		{in: "/a/b/..", want: "/a/"},
		{in: "/a/b/.", want: "/a/b/"},
		{in: "/a/b/", want: "/a/b/"},
		{in: "/a/b//", want: "/a/b/"},
		{in: `\shop\..\admin`, want: "/admin"},
		{in: `/shop\catalog.do`, want: "/shop/catalog.do"},
		{in: "/%7Euser/%41bc", want: "/~user/Abc"},
		{in: "/a%20b/c%3fd", want: "/a%20b/c%3Fd"},
		{in: "/a b", want: "/a%20b"},
		{in: "/caf\xc3\xa9", want: "/caf%C3%A9"},
		{in: "/a/...", want: "/a/..."},
		{in: "/a/..x/y", want: "/a/..x/y"},
		{in: "/a;jsessionid=1/b", want: "/a;jsessionid=1/b"},
		{in: "/shop/%2F..", err: ErrEncodedSeparator},
		{in: "/shop/%2f../admin", err: ErrEncodedSeparator},
		{in: "/api/v1/products/..%2f..%2fshop/admin/faults", err: ErrEncodedSeparator},
		{in: "/shop/%5c../admin", err: ErrEncodedSeparator},
		{in: "/shop/..;/admin", err: ErrDotParam},
		{in: "/shop/.;x/admin", err: ErrDotParam},
		{in: "/shop/%2e%2e;/admin", err: ErrDotParam},
		{in: "/a%00b", err: ErrControl},
		{in: "/a%0d%0aX-Injected:1", err: ErrControl},
		{in: "/a\x00b", err: ErrControl},
		{in: "/a%", err: ErrBadEscape},
		{in: "/a%2", err: ErrBadEscape},
		{in: "/a%zz", err: ErrBadEscape},
		{in: "*", err: ErrNotAbsolute},
		{in: "", err: ErrNotAbsolute},
		{in: "shop/catalog.do", err: ErrNotAbsolute},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := Normalize(nil, []byte(tc.in))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Normalize(%q) error = %v, want %v", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize(%q) error = %v", tc.in, err)
			}
			if string(got) != tc.want {
				t.Fatalf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
			}
			again, err := Normalize(nil, got)
			if err != nil || !bytes.Equal(again, got) {
				t.Fatalf("not idempotent: %q -> %q (%v)", got, again, err)
			}
		})
	}
}

func TestNormalizeReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 64)
	src := []byte("//shop//../catalog.do")
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		buf, err = Normalize(buf, src)
		if err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Normalize allocated %v times per call", allocs)
	}
	if string(buf) != "/catalog.do" {
		t.Fatalf("got %q", buf)
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{
		"/", "/shop/../admin", "/shop/%2e%2e/x", "//shop//catalog.do", "/shop/%2F..",
		"/api/v1/products/..%2f..%2fshop/admin/faults", `\..\`, "/a/./b/../c/", "/%25%32%65",
		"/..;/", "/a%20b", "/.%2e/.%2E/",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Normalize(nil, in)
		if err != nil {
			return
		}
		if len(out) == 0 || out[0] != '/' {
			t.Fatalf("%q -> %q: not absolute", in, out)
		}
		if bytes.Contains(out, []byte("//")) {
			t.Fatalf("%q -> %q: contains //", in, out)
		}
		if bytes.ContainsAny(out, "\\\x00\r\n") {
			t.Fatalf("%q -> %q: contains a backslash or control byte", in, out)
		}
		for seg := range bytes.SplitSeq(out, []byte("/")) {
			if string(seg) == "." || string(seg) == ".." {
				t.Fatalf("%q -> %q: dot segment remains", in, out)
			}
		}
		again, err := Normalize(nil, out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, out, again, err)
		}
	})
}

func TestMatchKeyDropsPathParameters(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"/shop/placeOrder.do", "/shop/placeOrder.do"},
		{"/shop/placeOrder.do;jsessionid=ABC", "/shop/placeOrder.do"},
		{"/shop;v=1/catalog.do", "/shop/catalog.do"},
		{"/shop/admin;x=1/faults;y", "/shop/admin/faults"},
		{"/shop/;x/admin", "/shop/admin"},
		{"/shop/admin;x/", "/shop/admin/"},
		{"/;x", "/"},
		{"/shop/a%3Bb", "/shop/a%3Bb"},
	}
	for _, tc := range cases {
		norm, err := Normalize(nil, []byte(tc.in))
		if err != nil {
			t.Fatalf("Normalize(%q): %v", tc.in, err)
		}
		if got := string(MatchKey(nil, norm)); got != tc.want {
			t.Errorf("MatchKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzMatchKey: the match key of a normalised path is itself normalised,
// carries no ';' parameter, and is what a second pass returns unchanged.
func FuzzMatchKey(f *testing.F) {
	for _, s := range []string{"/shop/placeOrder.do;jsessionid=1", "/a;b/c;d/", "/;/;", "/x%3By"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		norm, err := Normalize(nil, []byte(p))
		if err != nil {
			return
		}
		key := MatchKey(nil, norm)
		if strings.Contains(string(key), ";") {
			t.Fatalf("key %q of %q keeps a parameter", key, p)
		}
		again, err := Normalize(nil, key)
		if err != nil || string(again) != string(key) {
			t.Fatalf("key %q of %q is not normalised (%q, %v)", key, p, again, err)
		}
	})
}
