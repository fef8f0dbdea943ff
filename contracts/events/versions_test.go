package events_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/contracts/events"
	"github.com/ficus-gw/ficus/newsvc/order"
	"github.com/ficus-gw/ficus/newsvc/outbox"
)

func decode(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return m
}

// TestFeedUpcastsStoredV1ToV2 reads the same stored order.created events
// as v1 (default) and as v2 (?schemaVersion=2): the v2 ones validate
// against the v2 schema, differ from v1 only by the order-level currency
// and the version, and the other types are unchanged.
func TestFeedUpcastsStoredV1ToV2(t *testing.T) {
	strict, err := events.NewStrictValidator()
	if err != nil {
		t.Fatal(err)
	}
	s := startServices(t, nil, nil)
	s.exercise()
	v1 := s.feed(s.orders, "")
	v2 := s.feed(s.orders, "&schemaVersion=2")
	if len(v1) != len(v2) || len(v1) == 0 {
		t.Fatalf("v1 feed has %d events, v2 feed %d", len(v1), len(v2))
	}
	upcast := 0
	for i := range v1 {
		a, b := decode(t, v1[i]), decode(t, v2[i])
		k, err := strict.Validate(v2[i])
		if err != nil {
			t.Errorf("v2 feed: %v", err)
		}
		if a["type"] != "order.created" {
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s changed on the v2 feed:\n v1 %s\n v2 %s", a["type"], v1[i], v2[i])
			}
			continue
		}
		upcast++
		if k != (events.Key{Type: "order.created", Version: 2}) {
			t.Errorf("v2 feed served %s", k)
		}
		ad, bd := a["data"].(map[string]any), b["data"].(map[string]any)
		if _, ok := bd["currency"]; ok {
			t.Errorf("v2 data still has the order-level currency: %s", v2[i])
		}
		delete(ad, "currency")
		delete(a, "data")
		delete(b, "data")
		delete(a, "schemaVersion")
		delete(b, "schemaVersion")
		if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(ad, bd) {
			t.Errorf("upcast changed more than currency and version:\n v1 %s\n v2 %s", v1[i], v2[i])
		}
	}
	if upcast != 3 {
		t.Errorf("upcast %d order.created events, want 3", upcast)
	}
}

// TestFeedSchemaVersionParameter: out-of-range versions are refused with a
// structured error, and readers of the deprecated v1 are told so.
func TestFeedSchemaVersionParameter(t *testing.T) {
	s := startServices(t, nil, nil)
	for _, tc := range []struct {
		url    string
		status int
	}{
		{s.orders + "/api/v1/events?schemaVersion=3", 400},
		{s.orders + "/api/v1/events?schemaVersion=0", 400},
		{s.orders + "/api/v1/events?schemaVersion=two", 400},
		{s.catalog + "/api/v1/events?schemaVersion=2", 400},
		{s.catalog + "/api/v1/events?schemaVersion=1", 200},
		{s.orders + "/api/v1/events?schemaVersion=2", 200},
	} {
		status, body := s.do(http.MethodGet, tc.url, nil)
		if status != tc.status {
			t.Errorf("GET %s: %d %s, want %d", tc.url, status, body, tc.status)
			continue
		}
		if status == 400 {
			if e := decode(t, body); e["code"] != "VALIDATION_FAILED" {
				t.Errorf("GET %s: %s, want VALIDATION_FAILED", tc.url, body)
			}
		}
	}
	get := func(q string) http.Header {
		res, err := s.client.Get(s.orders + "/api/v1/events" + q)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return res.Header
	}
	if h := get(""); h.Get("Deprecation") != fmt.Sprintf("@%d", order.OrderCreatedV1Deprecated.Unix()) ||
		h.Get("Sunset") != "Wed, 01 Dec 2027 00:00:00 GMT" {
		t.Errorf("v1 readers get Deprecation %q, Sunset %q", h.Get("Deprecation"), h.Get("Sunset"))
	}
	if h := get("?schemaVersion=2"); h.Get("Deprecation") != "" || h.Get("Sunset") != "" {
		t.Errorf("v2 readers are told of a deprecation: %q %q", h.Get("Deprecation"), h.Get("Sunset"))
	}
}

// orderCreatedV1Reader is how a consumer written against order.created v1
// reads it: the fields it needs, nothing else.
type orderCreatedV1Reader struct {
	EventID string `json:"eventId"`
	Type    string `json:"type"`
	Data    struct {
		OrderID  string `json:"orderId"`
		Currency string `json:"currency"`
		Total    struct {
			AmountMinor int64 `json:"amountMinor"`
		} `json:"total"`
	} `json:"data"`
}

// TestTolerantReaders: a v1 consumer reads an event that gained fields (in
// the envelope, in data, in a line and in a money object) exactly as
// before, the published schema accepts it, and the upcaster keeps the
// added fields while producing valid v2.
func TestTolerantReaders(t *testing.T) {
	open, err := events.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	s := startServices(t, nil, nil)
	id := s.placeOrderAfterSeeding()
	var stored json.RawMessage
	for _, raw := range s.feed(s.orders, "") {
		if decode(t, raw)["type"] == "order.created" {
			stored = raw
		}
	}
	var before orderCreatedV1Reader
	if err := json.Unmarshal(stored, &before); err != nil || before.Data.OrderID != id {
		t.Fatalf("reading %s: %v", stored, err)
	}
	e := decode(t, stored)
	e["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	d := e["data"].(map[string]any)
	d["channel"] = "web"
	d["total"].(map[string]any)["display"] = "99,98 €"
	d["items"].([]any)[0].(map[string]any)["giftWrap"] = true
	grown, _ := json.Marshal(e)

	var after orderCreatedV1Reader
	if err := json.Unmarshal(grown, &after); err != nil {
		t.Fatalf("a v1 reader fails on added fields: %v", err)
	}
	if after != before {
		t.Errorf("added fields changed what a v1 reader reads: %+v, was %+v", after, before)
	}
	if _, err := open.Validate(grown); err != nil {
		t.Errorf("the published v1 schema refuses added fields: %v", err)
	}

	var env outbox.Envelope
	if err := json.Unmarshal(grown, &env); err != nil {
		t.Fatal(err)
	}
	up, err := outbox.Convert(order.Upcasters(), env, 2)
	if err != nil {
		t.Fatal(err)
	}
	upRaw, _ := json.Marshal(up)
	if k, err := open.Validate(upRaw); err != nil || k.Version != 2 {
		t.Fatalf("upcast event (%s) is not valid v2: %v\n%s", k, err, upRaw)
	}
	ud := decode(t, up.Data)
	if ud["channel"] != "web" || ud["total"].(map[string]any)["display"] != "99,98 €" ||
		ud["items"].([]any)[0].(map[string]any)["giftWrap"] != true {
		t.Errorf("the upcaster dropped fields it does not know: %s", up.Data)
	}
}

// placeOrderAfterSeeding puts a product in the Catalog and places one order.
func (s *services) placeOrderAfterSeeding() string {
	s.t.Helper()
	s.must(http.StatusCreated, http.MethodPut, s.catalog+"/api/v1/products/ART-1001",
		map[string]any{"name": "Desk lamp", "category": "lighting",
			"price": map[string]any{"amountMinor": 4999, "currency": "EUR"}, "stock": 10})
	return s.placeOrder("ord-t", "ART-1001", 2)
}

// hook is a loopback webhook receiver that records every body it gets.
type hook struct {
	srv *httptest.Server
	mu  sync.Mutex
	got [][]byte
	hdr []http.Header
}

func newHook(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, body []byte) bool) *hook {
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if handle != nil && !handle(w, r, body) {
			return
		}
		h.mu.Lock()
		h.got = append(h.got, body)
		h.hdr = append(h.hdr, r.Header.Clone())
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// wait returns the bodies received once there are at least n.
func (h *hook) wait(t *testing.T, n int) ([][]byte, []http.Header) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		h.mu.Lock()
		got, hdr := append([][]byte(nil), h.got...), append([]http.Header(nil), h.hdr...)
		h.mu.Unlock()
		if len(got) >= n {
			return got, hdr
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook got %d deliveries, want %d", len(got), n)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, bounded by the deadline
	}
}

// TestWebhookSubscriptionsChooseTheirVersion: two subscriptions of the same
// service, one on v1 and one on v2, get the same order.created each in its
// version, both valid.
func TestWebhookSubscriptionsChooseTheirVersion(t *testing.T) {
	strict, err := events.NewStrictValidator()
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := newHook(t, nil), newHook(t, nil)
	s := startServices(t, nil, []outbox.Subscriber{
		{Name: "billing-v1", URL: h1.srv.URL, Types: []string{"order.created"}},
		{Name: "billing-v2", URL: h2.srv.URL, Types: []string{"order.created"}, SchemaVersion: 2},
	})
	s.placeOrderAfterSeeding()
	b1, _ := h1.wait(t, 1)
	b2, _ := h2.wait(t, 1)
	k1, err1 := strict.Validate(b1[0])
	k2, err2 := strict.Validate(b2[0])
	if err1 != nil || err2 != nil {
		t.Fatalf("invalid deliveries: %v; %v", err1, err2)
	}
	if k1.Version != 1 || k2.Version != 2 {
		t.Errorf("subscriptions got %s and %s, want v1 and v2", k1, k2)
	}
	if decode(t, b1[0])["eventId"] != decode(t, b2[0])["eventId"] {
		t.Error("the two versions are not the same event")
	}
}
