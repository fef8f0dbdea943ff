package legacy

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

type catalogPage struct {
	Seite    int          `xml:"seite,attr"`
	Seiten   int          `xml:"seiten,attr"`
	Treffer  int          `xml:"treffer,attr"`
	ProSeite int          `xml:"proSeite,attr"`
	Artikel  []xmlArtikel `xml:"artikel"`
}

func TestCatalogPaging(t *testing.T) {
	t.Parallel()
	srv := serve(t, openShop(t, Config{}))
	kats := decode[xmlKategorien](t, get(t, srv, "/shop/categories.do", nil))
	sport := 0
	for _, k := range kats.Kat {
		if k.Code == "SPORT" {
			sport = k.Anzahl
		}
	}
	if sport == 0 {
		t.Fatalf("no SPORT category in %+v", kats)
	}
	tests := []struct {
		name        string
		q           url.Values
		wantItems   int
		wantPages   int
		wantFirst   string
		wantOnlyKat string
		wantTotal   int
	}{
		{"first page by default", nil, 20, 12, "ART-1001", "", 240},
		{"page 2", vals("page", "2"), 20, 12, "ART-1021", "", 240},
		{"last page", vals("page", "12"), 20, 12, "ART-1221", "", 240},
		{"past the end is empty", vals("page", "13"), 0, 12, "", "", 240},
		{"huge page number is empty", vals("page", "2147483647"), 0, 12, "", "", 240},
		{"large page size", vals("size", "5000"), 240, 1, "ART-1001", "", 240},
		{"odd size", vals("size", "7", "page", "35"), 2, 35, "ART-1239", "", 240},
		{"category filter, lower case accepted", vals("cat", "sport", "size", "100"), sport, 1, "", "SPORT", sport},
		{"unknown category is empty", vals("cat", "NOPE"), 0, 0, "", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := decode[catalogPage](t, get(t, srv, "/shop/catalog.do", tc.q))
			if len(p.Artikel) != tc.wantItems || p.Seiten != tc.wantPages || p.Treffer != tc.wantTotal {
				t.Fatalf("got %d items, %d pages, %d hits; want %d, %d, %d", len(p.Artikel), p.Seiten, p.Treffer, tc.wantItems, tc.wantPages, tc.wantTotal)
			}
			if tc.wantFirst != "" && p.Artikel[0].ArtNr != tc.wantFirst {
				t.Errorf("first article %s, want %s", p.Artikel[0].ArtNr, tc.wantFirst)
			}
			for _, a := range p.Artikel {
				if tc.wantOnlyKat != "" && a.Kat != tc.wantOnlyKat {
					t.Errorf("%s is in %s, want only %s", a.ArtNr, a.Kat, tc.wantOnlyKat)
				}
				if a.Beschr != "" {
					t.Errorf("catalog page carries the long description of %s", a.ArtNr)
				}
			}
		})
	}
	for _, q := range []url.Values{vals("page", "0"), vals("page", "x"), vals("page", "-1"), vals("size", "0"), vals("size", "5001")} {
		t.Run("bad "+q.Encode(), func(t *testing.T) {
			t.Parallel()
			wantError(t, get(t, srv, "/shop/catalog.do", q), errBadInput)
		})
	}
}

func TestProductDetail(t *testing.T) {
	t.Parallel()
	srv := serve(t, openShop(t, Config{}))
	a := decode[xmlArtikel](t, get(t, srv, "/shop/productDetail.do", vals("art_nr", "art-1005")))
	if a.ArtNr != "ART-1005" || a.Bez == "" || a.Beschr == "" || a.ChgSeq == 0 || a.Geaendert != "14.03.2025 11:30" {
		t.Errorf("incomplete detail: %+v", a)
	}
	if !moneyRE.MatchString(a.Preis) {
		t.Errorf("price %q", a.Preis)
	}
	wantError(t, get(t, srv, "/shop/productDetail.do", vals("art_nr", "ART-9999")), errUnknownArticle)
	wantError(t, get(t, srv, "/shop/productDetail.do", nil), errBadInput)
}

func TestProductPageIsLatin1HTML(t *testing.T) {
	t.Parallel()
	s := openShop(t, Config{})
	srv := serve(t, s)
	// Find an article whose name needs Latin-1 (ä, ö, ü, ß).
	var art xmlArtikel
	for _, a := range decode[catalogPage](t, get(t, srv, "/shop/catalog.do", vals("size", "240"))).Artikel {
		if strings.ContainsAny(a.Bez, "äöüß") {
			art = a
			break
		}
	}
	if art.ArtNr == "" {
		t.Fatal("no article with an umlaut in its name")
	}
	r := get(t, srv, "/shop/product.html", vals("art_nr", art.ArtNr))
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/html; charset=ISO-8859-1" {
		t.Fatalf("status %d, Content-Type %q", r.status, r.header.Get("Content-Type"))
	}
	if !bytes.Contains(r.body, latin1(art.Bez)) {
		t.Errorf("page does not contain the Latin-1 bytes of %q", art.Bez)
	}
	if utf8.Valid(r.body) {
		t.Error("page is valid UTF-8; it should be ISO-8859-1")
	}
	if !bytes.Contains(r.body, []byte(`name="art_nr" value="`+art.ArtNr+`"`)) {
		t.Error("page lacks the buy form for the article")
	}
	nf := get(t, srv, "/shop/product.html", vals("art_nr", "ART-9999"))
	if nf.status != http.StatusNotFound || !strings.HasPrefix(nf.header.Get("Content-Type"), "text/html") {
		t.Errorf("unknown article page: status %d, %q", nf.status, nf.header.Get("Content-Type"))
	}
}

func TestServletLookAndFeel(t *testing.T) {
	t.Parallel()
	srv := serve(t, openShop(t, Config{Products: 20}))
	r := get(t, srv, "/shop/orderStatus.do", vals("ord_no", "500001"))
	if r.header.Get("Server") != serverHeader || r.header.Get("Content-Type") != xmlContentType {
		t.Errorf("headers %v", r.header)
	}
	if !bytes.HasPrefix(r.body, []byte(`<?xml version="1.0" encoding="UTF-8"?>`)) {
		t.Errorf("no XML declaration: %.60s", r.body)
	}
	if c := r.header.Get("Set-Cookie"); !strings.HasPrefix(c, "JSESSIONID=") || !strings.Contains(c, "Path=/shop") {
		t.Errorf("Set-Cookie %q", c)
	}
	// A client that already has a session is not given a new one.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/shop/categories.do", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: "ABC"})
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if c := res.Header.Get("Set-Cookie"); c != "" {
		t.Errorf("session renewed: %q", c)
	}
}

func TestProtocolErrors(t *testing.T) {
	t.Parallel()
	srv := serve(t, openShop(t, Config{Products: 20}))
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantAllow  string
	}{
		{"unknown page", http.MethodGet, "/shop/nothing.do", "", http.StatusNotFound, ""},
		{"outside the shop", http.MethodGet, "/", "", http.StatusNotFound, ""},
		{"GET on a POST action", http.MethodGet, "/shop/placeOrder.do", "", http.StatusMethodNotAllowed, "POST"},
		{"POST on a query", http.MethodPost, "/shop/catalog.do", "", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"undecodable form", http.MethodPost, "/shop/placeOrder.do", "cust_no=%zz", http.StatusBadRequest, ""},
		{"oversized form", http.MethodPost, "/shop/cancelOrder.do", "ord_no=1&x=" + strings.Repeat("a", maxFormBytes), http.StatusRequestEntityTooLarge, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d", res.StatusCode, tc.wantStatus)
			}
			if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
				t.Errorf("Content-Type %q, want the container's HTML page", res.Header.Get("Content-Type"))
			}
			if res.Header.Get("Allow") != tc.wantAllow {
				t.Errorf("Allow %q, want %q", res.Header.Get("Allow"), tc.wantAllow)
			}
		})
	}
}

func TestOrderQueries(t *testing.T) {
	t.Parallel()
	s := openShop(t, Config{})
	srv := serve(t, s)
	setStock(t, s, "ART-1010", 10)
	placed := decode[xmlAuftrag](t, post(t, srv, "/shop/placeOrder.do", vals("cust_no", "100002", "item", "ART-1010:3")))

	got := decode[xmlAuftrag](t, get(t, srv, "/shop/orderStatus.do", vals("ord_no", placed.OrdNo)))
	if got.OrdNo != placed.OrdNo || got.StsCd != stsReserved || got.StsTxt != "RESERVIERT" {
		t.Errorf("orderStatus: %+v", got)
	}
	mine := decode[xmlKundenAuftraege](t, get(t, srv, "/shop/customerOrders.do", vals("cust_no", "100002")))
	if mine.Anzahl != len(mine.Auftraege) || len(mine.Auftraege) == 0 || mine.Auftraege[len(mine.Auftraege)-1].OrdNo != placed.OrdNo {
		t.Errorf("customerOrders does not end with the new order: %d orders", len(mine.Auftraege))
	}
	for _, o := range mine.Auftraege {
		if o.CustNo != "100002" {
			t.Errorf("order %s of customer %s listed for 100002", o.OrdNo, o.CustNo)
		}
	}

	for _, tc := range []struct {
		name, path string
		q          url.Values
		code       string
	}{
		{"unknown order", "/shop/orderStatus.do", vals("ord_no", "1"), errUnknownOrder},
		{"ord_no not a number", "/shop/orderStatus.do", vals("ord_no", "50x"), errBadInput},
		{"ord_no missing", "/shop/orderStatus.do", nil, errBadInput},
		{"unknown customer", "/shop/customerOrders.do", vals("cust_no", "999999"), errUnknownCustomer},
		{"cust_no missing", "/shop/customerOrders.do", nil, errBadInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantError(t, get(t, srv, tc.path, tc.q), tc.code)
		})
	}
}

// The placed order's XML is the contract the ACL parses: pin it exactly.
func TestPlaceOrderWireFormat(t *testing.T) {
	t.Parallel()
	s := openShop(t, Config{Products: 20})
	srv := serve(t, s)
	if _, err := s.db.W.Exec(`UPDATE artikel SET bestand = 5000, preis_ct = 123450, bez = 'Weiß & Söhne Hochbeet' WHERE art_nr = 'ART-1003'`); err != nil {
		t.Fatal(err)
	}
	r := post(t, srv, "/shop/placeOrder.do", vals("cust_no", aCustomer, "item", "ART-1003:2", "ext_ref", "web-42"))
	want := `<?xml version="1.0" encoding="UTF-8"?>
<auftrag ord_no="500201" chg_seq="221">
 <cust_no>100001</cust_no>
 <sts_cd>3</sts_cd>
 <sts_txt>RESERVIERT</sts_txt>
 <ext_ref>web-42</ext_ref>
 <angelegt>14.03.2025 11:30</angelegt>
 <geaendert>14.03.2025 11:30</geaendert>
 <summe>2.469,00</summe>
 <waehrung>EUR</waehrung>
 <positionen>
  <pos nr="1">
   <art_nr>ART-1003</art_nr>
   <bez>Weiß &amp; Söhne Hochbeet</bez>
   <menge>2</menge>
   <einzelpreis>1.234,50</einzelpreis>
   <summe>2.469,00</summe>
  </pos>
 </positionen>
</auftrag>
`
	if string(r.body) != want {
		t.Errorf("placeOrder body:\n%s\nwant:\n%s", r.body, want)
	}
}

func TestPlaceOrderBusinessErrors(t *testing.T) {
	t.Parallel()
	s := openShop(t, Config{})
	srv := serve(t, s)
	setStock(t, s, "ART-1020", 5)
	setStock(t, s, "ART-1021", 2)
	tests := []struct {
		name string
		form url.Values
		code string
	}{
		{"unknown article", vals("cust_no", aCustomer, "item", "ART-1020:1", "item", "ART-9999:1"), errUnknownArticle},
		{"insufficient stock on the second line", vals("cust_no", aCustomer, "item", "ART-1020:1", "item", "ART-1021:3"), errInsufficientStock},
		{"unknown customer", vals("cust_no", "999999", "item", "ART-1020:1"), errUnknownCustomer},
		{"no lines", vals("cust_no", aCustomer), errBadInput},
		{"zero quantity", vals("cust_no", aCustomer, "item", "ART-1020:0"), errBadInput},
		{"cust_no not numeric", vals("cust_no", "K1", "item", "ART-1020:1"), errBadInput},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, post(t, srv, "/shop/placeOrder.do", tc.form), tc.code)
		})
	}
	// Nothing half-written: the good first lines reserved nothing.
	if got := stockOf(t, srv, "ART-1020"); got != 5 {
		t.Errorf("ART-1020 stock %d after failed orders, want 5", got)
	}
	var n int
	if err := s.db.R.QueryRow(`SELECT COUNT(*) FROM auftrag`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != seedOrders {
		t.Errorf("%d orders after only failed attempts, want %d", n, seedOrders)
	}
}

// captureHandler is a slog.Handler that keeps records for assertions.
type captureHandler struct {
	mu      sync.Mutex
	records []slog.Record
	attrs   []slog.Attr
	parent  *captureHandler
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	root := h
	for root.parent != nil {
		root = root.parent
	}
	r = r.Clone()
	r.AddAttrs(h.attrs...)
	root.mu.Lock()
	defer root.mu.Unlock()
	root.records = append(root.records, r)
	return nil
}
func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{attrs: append(append([]slog.Attr{}, h.attrs...), as...), parent: h.rootOrSelf()}
}
func (h *captureHandler) WithGroup(string) slog.Handler { return h }
func (h *captureHandler) rootOrSelf() *captureHandler {
	if h.parent != nil {
		return h.parent
	}
	return h
}

func TestLogsCarryRequestID(t *testing.T) {
	t.Parallel()
	cfg := Config{DBPath: t.TempDir() + "/shop.db", Products: 10, Now: (&testClock{now: testStart}).Now}
	logs := &captureHandler{}
	s, err := Open(context.Background(), cfg, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := serve(t, s)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/shop/orderStatus.do?ord_no=1", nil)
	req.Header.Set(requestIDHeader, "req-4711")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	logs.mu.Lock()
	defer logs.mu.Unlock()
	found := map[string]bool{}
	for _, r := range logs.records {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "request_id" && a.Value.String() == "req-4711" {
				found[r.Message] = true
			}
			return true
		})
	}
	if !found["request"] || !found["business error"] {
		t.Errorf("request id missing from access or business-error log; logged with it: %v", found)
	}
}
