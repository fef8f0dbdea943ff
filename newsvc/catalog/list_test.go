package catalog_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/newsvc/catalog"
)

type pageV1 struct {
	Items      []catalog.Product `json:"items"`
	NextCursor *string           `json:"nextCursor"`
}

// walk pages through a list endpoint and returns every item's SKU and
// category in the order received.
func walk(t *testing.T, e *env, base string, limit int) (skus, categories []string) {
	t.Helper()
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("pagination does not terminate")
		}
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		r := e.do(http.MethodGet, base+sep+q.Encode(), nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("page %d: %s", pages, r)
		}
		var p pageV1
		r.decode(t, &p)
		if len(p.Items) > limit {
			t.Fatalf("page of %d items exceeds limit %d", len(p.Items), limit)
		}
		for _, it := range p.Items {
			skus = append(skus, it.SKU)
			categories = append(categories, it.Category)
		}
		if p.NextCursor == nil {
			return skus, categories
		}
		if len(p.Items) == 0 {
			t.Fatal("empty page with a next cursor")
		}
		cursor = *p.NextCursor
	}
}

func TestPaginationReturnsEveryProductOnceWhileInserting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const n = 120
	seeded := map[string]string{}
	for i := 0; i < n; i++ {
		sku := fmt.Sprintf("P-%04d", 2*i) // even: present before the walk
		cat := []string{"chairs", "tables", "lamps"}[i%3]
		e.put(sku, product("Item "+sku, cat, int64(100+i), int64(i%4)))
		seeded[sku] = cat
	}

	// Insert odd SKUs, interleaved with the seeded ones, during the walk.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; i < n; i++ {
			select {
			case <-stop:
				return
			default:
			}
			sku := fmt.Sprintf("P-%04d", 2*i+1)
			if r := e.do(http.MethodPut, "/api/v1/products/"+sku, product("New "+sku, "chairs", 1, 1), nil); r.status != http.StatusCreated {
				t.Errorf("concurrent insert %s: %s", sku, r)
				return
			}
		}
	})
	skus, _ := walk(t, e, "/api/v1/products", 7)
	close(stop)
	wg.Wait()

	seen := map[string]int{}
	for i, s := range skus {
		seen[s]++
		if i > 0 && skus[i-1] >= s {
			t.Fatalf("not strictly sorted by sku at %d: %s then %s", i, skus[i-1], s)
		}
	}
	for sku := range seeded {
		if seen[sku] != 1 {
			t.Errorf("%s seen %d times, want exactly once", sku, seen[sku])
		}
	}

	// A category filter walks only that category, each product once.
	got, cats := walk(t, e, "/api/v2/products?category=lamps", 5)
	want := 0
	for _, c := range seeded {
		if c == "lamps" {
			want++
		}
	}
	if len(got) != want {
		t.Errorf("lamps walk returned %d products, want %d", len(got), want)
	}
	for i, c := range cats {
		if c != "lamps" {
			t.Errorf("%s of category %s in the lamps walk", got[i], c)
		}
	}
}

func TestListVersionsAndDeprecation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for i := range 25 {
		e.put(fmt.Sprintf("ART-%03d", i), product("Thing", "misc", 250, 1))
	}
	v1 := e.do(http.MethodGet, "/api/v1/products", nil, nil)
	var p pageV1
	v1.decode(t, &p)
	if v1.status != http.StatusOK || len(p.Items) != 20 || p.NextCursor == nil || p.Items[0].Price.AmountMinor != 250 {
		t.Fatalf("v1 default page: %d items, next %v", len(p.Items), p.NextCursor)
	}
	if got := v1.header.Get("Deprecation"); got != "@1780272000" {
		t.Errorf("Deprecation = %q, want @<unix seconds> of 2026-06-01", got)
	}
	sunset, err := http.ParseTime(v1.header.Get("Sunset"))
	if err != nil || !sunset.Equal(time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Sunset = %q (%v), want an HTTP-date", v1.header.Get("Sunset"), err)
	}
	if link := v1.header.Get("Link"); !strings.Contains(link, `</api/v2/products>; rel="successor-version"`) {
		t.Errorf("Link = %q, want the successor", link)
	}

	v2 := e.do(http.MethodGet, "/api/v2/products?limit=100", nil, nil)
	if v2.status != http.StatusOK || v2.header.Get("Deprecation") != "" || v2.header.Get("Sunset") != "" {
		t.Errorf("v2 list: %d, Deprecation %q", v2.status, v2.header.Get("Deprecation"))
	}
	var raw struct {
		Items      []map[string]json.RawMessage `json:"items"`
		NextCursor *string                      `json:"nextCursor"`
	}
	v2.decode(t, &raw)
	if len(raw.Items) != 25 || raw.NextCursor != nil {
		t.Fatalf("v2 list of 25 with limit 100: %d items, next %v", len(raw.Items), raw.NextCursor)
	}
	// The last page omits nextCursor rather than sending null: one shape
	// for every list of the contract (orders, ACL) (docs/contracts.md).
	if bytes.Contains(v2.body, []byte(`"nextCursor"`)) {
		t.Errorf("last page carries nextCursor: %.200s", v2.body)
	}
	if _, ok := raw.Items[0]["price"]; ok {
		t.Error("v2 list items still carry price")
	}
	// The item endpoint is not deprecated.
	if r := e.do(http.MethodGet, "/api/v1/products/ART-001", nil, nil); r.header.Get("Deprecation") != "" {
		t.Error("the item endpoint carries a Deprecation header")
	}
}

func TestListRejectsBadParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.put("ART-1", product("A", "misc", 1, 1))
	e.put("ART-2", product("B", "misc", 1, 1))
	var p pageV1
	e.do(http.MethodGet, "/api/v1/products?limit=1&category=misc", nil, nil).decode(t, &p)
	if p.NextCursor == nil {
		t.Fatal("no cursor to reuse")
	}
	forged := base64.RawURLEncoding.EncodeToString([]byte("c1\nmisc\nART 1"))
	for _, q := range []string{
		"limit=0", "limit=101", "limit=ten", "limit=-5",
		"cursor=%%%", "cursor=bm9wZQ", "cursor=" + forged,
		"category=BAD!", "cursor=" + *p.NextCursor, // issued for category=misc, reused without it
		"category=other&cursor=" + *p.NextCursor,
	} {
		for _, path := range []string{"/api/v1/products?", "/api/v2/products?"} {
			t.Run(path+q, func(t *testing.T) {
				t.Parallel()
				r := e.do(http.MethodGet, path+q, nil, nil)
				if r.status != http.StatusBadRequest || r.errBody(t).Code != apierr.CodeValidation {
					t.Errorf("got %s, want 400 %s", r, apierr.CodeValidation)
				}
			})
		}
	}
}
