package legacy

import (
	"bytes"
	"context"
	"encoding/xml"
	"path/filepath"
	"regexp"
	"testing"
)

type catalogExport struct {
	Anzahl  int          `xml:"anzahl,attr"`
	Artikel []xmlArtikel `xml:"artikel"`
}

type orderExport struct {
	Typ     string       `xml:"typ,attr"`
	Since   string       `xml:"since,attr"`
	Next    int64        `xml:"next,attr"`
	Mehr    string       `xml:"mehr,attr"`
	Anzahl  int          `xml:"anzahl,attr"`
	Orders  []xmlAuftrag `xml:"auftrag"`
	Artikel []xmlArtikel `xml:"artikel"`
}

var moneyRE = regexp.MustCompile(`^\d{1,3}(\.\d{3})*,\d\d$`)

func TestSeedCatalogIsRealistic(t *testing.T) {
	t.Parallel()
	srv := serve(t, openShop(t, Config{}))
	cat := decode[catalogExport](t, get(t, srv, "/shop/export/catalog.xml", nil))
	if cat.Anzahl != DefaultProducts || len(cat.Artikel) != DefaultProducts {
		t.Fatalf("catalog has anzahl=%d and %d articles, want %d", cat.Anzahl, len(cat.Artikel), DefaultProducts)
	}
	kats := map[string]int{}
	outOfStock := 0
	seen := map[string]bool{}
	for _, a := range cat.Artikel {
		kats[a.Kat]++
		if a.Bestand == 0 {
			outOfStock++
			if a.Lieferbar != "N" {
				t.Errorf("%s has no stock but lieferbar=%q", a.ArtNr, a.Lieferbar)
			}
		}
		if seen[a.ArtNr] {
			t.Errorf("duplicate art_nr %s", a.ArtNr)
		}
		seen[a.ArtNr] = true
		if a.Bez == "" || len(a.Beschr) < 200 || len(a.EAN) != 13 {
			t.Errorf("%s: thin data: bez=%q, %d chars of beschr, ean=%q", a.ArtNr, a.Bez, len(a.Beschr), a.EAN)
		}
		if !moneyRE.MatchString(a.Preis) || a.Waehrung != "EUR" {
			t.Errorf("%s: price %q %s is not a decimal-comma EUR amount", a.ArtNr, a.Preis, a.Waehrung)
		}
	}
	if len(kats) < 5 {
		t.Errorf("only %d categories: %v", len(kats), kats)
	}
	if outOfStock == 0 || outOfStock > DefaultProducts/4 {
		t.Errorf("%d of %d articles out of stock, want some but not most", outOfStock, DefaultProducts)
	}

	orders := decode[orderExport](t, get(t, srv, "/shop/export/orders.do", vals("max", "1000")))
	if len(orders.Orders) != seedOrders {
		t.Fatalf("%d historic orders, want %d", len(orders.Orders), seedOrders)
	}
	statuses := map[int]int{}
	customers := map[string]bool{}
	for _, o := range orders.Orders {
		statuses[o.StsCd]++
		customers[o.CustNo] = true
	}
	for _, sts := range []int{stsNew, stsReserved, stsPaid, stsShipped, stsCancelled} {
		if statuses[sts] == 0 {
			t.Errorf("no historic order in status %d: %v", sts, statuses)
		}
	}
	if len(customers) < 20 {
		t.Errorf("historic orders come from only %d customers", len(customers))
	}
}

func TestSeedProductsConfig(t *testing.T) {
	t.Parallel()
	srv := serve(t, openShop(t, Config{Products: 30}))
	cat := decode[catalogExport](t, get(t, srv, "/shop/export/catalog.xml", nil))
	if len(cat.Artikel) != 30 {
		t.Fatalf("%d articles, want 30", len(cat.Artikel))
	}
}

func TestSeedIsDeterministic(t *testing.T) {
	t.Parallel()
	dump := func(seed int64) []byte {
		srv := serve(t, openShop(t, Config{Seed: seed}))
		var b bytes.Buffer
		b.Write(get(t, srv, "/shop/export/catalog.xml", nil).body)
		b.Write(get(t, srv, "/shop/export/orders.do", vals("max", "1000")).body)
		return b.Bytes()
	}
	a, b, c := dump(7), dump(7), dump(8)
	if !bytes.Equal(a, b) {
		t.Error("same seed and clock gave different data")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds gave identical data")
	}
}

func TestSecondStartDoesNotReseed(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "shop.db")
	first, err := Open(context.Background(), Config{DBPath: path, Now: (&testClock{now: testStart}).Now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, first)
	setStock(t, first, "ART-1001", 5)
	placed := decode[xmlAuftrag](t, post(t, srv, "/shop/placeOrder.do", vals("cust_no", aCustomer, "item", "ART-1001:2")))
	srv.Close()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	// A different seed and size must not matter once the file is seeded.
	second := openShop(t, Config{DBPath: path, Seed: 99, Products: 10})
	srv2 := serve(t, second)
	cat := decode[catalogExport](t, get(t, srv2, "/shop/export/catalog.xml", nil))
	if len(cat.Artikel) != DefaultProducts {
		t.Errorf("after restart %d articles, want the original %d", len(cat.Artikel), DefaultProducts)
	}
	if got := stockOf(t, srv2, "ART-1001"); got != 3 {
		t.Errorf("stock after restart = %d, want 3 (5 minus the order)", got)
	}
	again := decode[xmlAuftrag](t, get(t, srv2, "/shop/orderStatus.do", vals("ord_no", placed.OrdNo)))
	if again.StsCd != stsReserved {
		t.Errorf("order %s after restart has status %d", placed.OrdNo, again.StsCd)
	}
	var n int
	if err := second.db.R.QueryRow(`SELECT COUNT(*) FROM auftrag`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != seedOrders+1 {
		t.Errorf("%d orders after restart, want %d", n, seedOrders+1)
	}
}

// The XML must stay well-formed as a whole, not only per element: a
// streaming client parses it token by token.
func TestCatalogExportIsOneWellFormedDocument(t *testing.T) {
	t.Parallel()
	srv := serve(t, openShop(t, Config{}))
	r := get(t, srv, "/shop/export/catalog.xml", nil)
	if len(r.body) < 200<<10 {
		t.Errorf("catalog dump is %d bytes; the streaming tests need a few hundred KB", len(r.body))
	}
	if r.header.Get("Content-Length") != "" {
		t.Error("catalog dump has a Content-Length: it was buffered, not streamed")
	}
	dec := xml.NewDecoder(bytes.NewReader(r.body))
	depth, roots := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	if depth != 0 || roots != 1 {
		t.Errorf("document ends at depth %d with %d root elements", depth, roots)
	}
}
