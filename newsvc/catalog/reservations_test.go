package catalog_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/newsvc/catalog"
)

func (e *env) reserve(sku, ref string, units int64) resp {
	e.t.Helper()
	return e.do(http.MethodPost, adjustPath(sku), map[string]any{"delta": -units, "reason": "order-reserved", "reference": ref},
		map[string]string{"Idempotency-Key": ref + sku})
}

func (e *env) openReservations(query string) (items []catalog.Reservation, next *string) {
	e.t.Helper()
	r := e.do(http.MethodGet, "/api/v1/stock-reservations"+query, nil, nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("list reservations: %s", r)
	}
	var page struct {
		Items      []catalog.Reservation `json:"items"`
		NextCursor *string               `json:"nextCursor"`
	}
	r.decode(e.t, &page)
	return page.Items, page.NextCursor
}

func TestReleaseByReferenceGivesEveryOpenReservationBackOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.put("MUG", product("Mug", "kitchen", 800, 10))
	e.put("CUP", product("Cup", "kitchen", 700, 10))
	if r := e.reserve("MUG", "ord-1", 3); r.status != http.StatusCreated {
		t.Fatal(r)
	}
	if r := e.reserve("CUP", "ord-1", 2); r.status != http.StatusCreated {
		t.Fatal(r)
	}
	// One unit of CUP was already given back line by line (a partial
	// cancellation path): only the rest is open.
	if r := e.do(http.MethodPost, adjustPath("CUP"), map[string]any{"delta": 1, "reason": "order-released", "reference": "ord-1"},
		map[string]string{"Idempotency-Key": "ord-1CUP:release"}); r.status != http.StatusCreated {
		t.Fatal(r)
	}
	if r := e.reserve("MUG", "ord-2", 1); r.status != http.StatusCreated { // someone else's reservation
		t.Fatal(r)
	}
	e.clock.Advance(90 * time.Second)
	items, _ := e.openReservations("")
	if len(items) != 3 || items[0] != (catalog.Reservation{Reference: "ord-1", SKU: "CUP", Quantity: 1, ReservedAt: items[0].ReservedAt, AgeSeconds: 90}) ||
		items[1].SKU != "MUG" || items[1].Quantity != 3 || items[2].Reference != "ord-2" {
		t.Fatalf("open reservations %+v", items)
	}

	first := e.do(http.MethodPost, "/api/v1/stock-reservations/ord-1/release", nil, nil)
	if first.status != http.StatusOK || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("release: %s", first)
	}
	var rel catalog.ReservationRelease
	first.decode(t, &rel)
	if rel.Reference != "ord-1" || len(rel.Released) != 2 || rel.Released[0].SKU != "CUP" || rel.Released[0].Delta != 1 ||
		rel.Released[1].SKU != "MUG" || rel.Released[1].Delta != 3 || rel.Released[1].Reason != "order-released" {
		t.Fatalf("release answer %+v", rel)
	}
	if m, c := e.stock("MUG").Stock, e.stock("CUP").Stock; m != 9 || c != 10 {
		t.Fatalf("stock MUG=%d CUP=%d after release, want 9 (ord-2 still holds 1) and 10", m, c)
	}

	again := e.do(http.MethodPost, "/api/v1/stock-reservations/ord-1/release", "{}", nil)
	if again.status != http.StatusOK || again.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.body, first.body) {
		t.Fatalf("repeated release: %s", again)
	}
	if m := e.stock("MUG").Stock; m != 9 {
		t.Fatalf("repeated release changed stock: MUG=%d", m)
	}
	if items, _ := e.openReservations(""); len(items) != 1 || items[0].Reference != "ord-2" {
		t.Fatalf("open after release %+v", items)
	}
	if n := len(eventsOfType(e.events(), catalog.EventStockChanged)); n != 2+4+2 { // 2 creates, 4 adjustments, 2 releases
		t.Errorf("%d stock.changed events, want 8", n)
	}
}

func TestLateReservationUnderReleasedReferenceIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.put("MUG", product("Mug", "kitchen", 800, 10))
	// The holder gave up before its reservation arrived: nothing is held,
	// the reference is still tombstoned.
	if r := e.do(http.MethodPost, "/api/v1/stock-reservations/ord-late/release", nil, nil); r.status != http.StatusOK {
		t.Fatal(r)
	}
	late := e.reserve("MUG", "ord-late", 4)
	if late.status != http.StatusConflict {
		t.Fatalf("late reservation: %s, want 409", late)
	}
	var b struct {
		apierr.Body
		Details map[string]string `json:"details"`
	}
	late.decode(t, &b)
	if b.Code != apierr.CodeConflict || b.Details["reason"] != catalog.ReleasedReason || b.Details["reference"] != "ord-late" {
		t.Fatalf("late reservation body %s", late.body)
	}
	if s := e.stock("MUG").Stock; s != 10 {
		t.Fatalf("stock %d after a refused reservation, want 10", s)
	}
	// A reservation applied before the release, replayed after it, is not
	// reported as held.
	if r := e.reserve("MUG", "ord-3", 2); r.status != http.StatusCreated {
		t.Fatal(r)
	}
	if r := e.do(http.MethodPost, "/api/v1/stock-reservations/ord-3/release", nil, nil); r.status != http.StatusOK {
		t.Fatal(r)
	}
	if r := e.reserve("MUG", "ord-3", 2); r.status != http.StatusConflict {
		t.Fatalf("replayed reservation after release: %s, want 409", r)
	}
	// Other reasons under the reference are not affected.
	if r := e.do(http.MethodPost, adjustPath("MUG"), map[string]any{"delta": 5, "reason": "restock", "reference": "ord-late"},
		map[string]string{"Idempotency-Key": "restock-1"}); r.status != http.StatusCreated {
		t.Fatalf("restock under a released reference: %s", r)
	}
	if s := e.stock("MUG").Stock; s != 15 {
		t.Fatalf("stock %d, want 15", s)
	}
}

func TestOpenReservationsArePaged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.put("MUG", product("Mug", "kitchen", 800, 100))
	e.put("CUP", product("Cup", "kitchen", 700, 100))
	want := []string{}
	for _, ref := range []string{"a", "b", "c"} {
		for _, sku := range []string{"CUP", "MUG"} {
			if r := e.reserve(sku, ref, 1); r.status != http.StatusCreated {
				t.Fatal(r)
			}
			want = append(want, ref+"/"+sku)
		}
	}
	var got []string
	cursor := ""
	for range 10 {
		items, next := e.openReservations("?limit=4" + cursor)
		for _, it := range items {
			got = append(got, it.Reference+"/"+it.SKU)
		}
		if next == nil {
			break
		}
		cursor = "&cursor=" + *next
	}
	if len(got) != len(want) {
		t.Fatalf("paged reservations %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("paged reservations %v, want %v", got, want)
		}
	}
	if r := e.do(http.MethodGet, "/api/v1/stock-reservations?cursor=bogus", nil, nil); r.status != http.StatusBadRequest ||
		r.errBody(t).Code != apierr.CodeValidation {
		t.Fatalf("bad cursor: %s", r)
	}
	if r := e.do(http.MethodPost, "/api/v1/stock-reservations/x/release", `{"force":true}`, nil); r.status != http.StatusBadRequest {
		t.Fatalf("unknown body field: %s", r)
	}
}
