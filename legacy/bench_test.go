package legacy

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func BenchmarkCatalogPage(b *testing.B) {
	s := openShop(b, Config{})
	h := s.Handler()
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/shop/catalog.do?page=3", nil))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

func BenchmarkPlaceAndCancelOrder(b *testing.B) {
	s := openShop(b, Config{Products: 20})
	srv := serve(b, s)
	setStock(b, s, "ART-1002", 100)
	b.ReportAllocs()
	for b.Loop() {
		o := decode[xmlAuftrag](b, post(b, srv, "/shop/placeOrder.do", vals("cust_no", aCustomer, "item", "ART-1002:1")))
		decode[xmlAuftrag](b, post(b, srv, "/shop/cancelOrder.do", vals("ord_no", o.OrdNo)))
	}
}

func BenchmarkFormatMoney(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = formatMoney(123456789)
	}
}
