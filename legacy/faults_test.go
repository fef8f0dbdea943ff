package legacy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func setFault(t *testing.T, srv *httptest.Server, body string) (int, faultList) {
	t.Helper()
	res, err := srv.Client().Post(srv.URL+faultsPath, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var l faultList
	_ = json.NewDecoder(res.Body).Decode(&l)
	return res.StatusCode, l
}

// sequence returns a FaultRand that yields vs in turn, then repeats.
func sequence(vs ...float64) func() float64 {
	var mu sync.Mutex
	i := 0
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		v := vs[i%len(vs)]
		i++
		return v
	}
}

func TestFaultLatencyStopsWhenClientLeaves(t *testing.T) {
	t.Parallel()
	s := openShop(t, Config{Products: 20})
	srv := serve(t, s)
	if code, _ := setFault(t, srv, `{"endpoint":"placeOrder.do","latency_ms":600000}`); code != http.StatusOK {
		t.Fatalf("setting fault: %d", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/shop/placeOrder.do", strings.NewReader("cust_no="+aCustomer+"&item=ART-1002:1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Handler().ServeHTTP(rec, req)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("handler still waiting out a 10 minute latency after the client left")
	}
	if rec.Body.Len() != 0 {
		t.Errorf("abandoned request got a body: %s", rec.Body)
	}
	var n int
	if err := s.db.R.QueryRow(`SELECT COUNT(*) FROM auftrag`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != seedOrders {
		t.Errorf("an order was placed for a client that had left")
	}

	// A short latency delays but does not break the request.
	setFault(t, srv, `{"endpoint":"/shop/categories.do","latency_ms":1}`)
	decode[xmlKategorien](t, get(t, srv, "/shop/categories.do", nil))
}

func TestFaultErrorRateUsesInjectedRandom(t *testing.T) {
	t.Parallel()
	srv := serve(t, openShop(t, Config{Products: 20, FaultRand: sequence(0.1, 0.9, 0.49, 0.5)}))
	setFault(t, srv, `{"endpoint":"/shop/orderStatus.do","error_rate":0.5}`)
	want := []int{500, 200, 500, 200}
	for i, w := range want {
		r := get(t, srv, "/shop/orderStatus.do", vals("ord_no", "500001"))
		if r.status != w {
			t.Errorf("request %d: status %d, want %d", i, r.status, w)
		}
		if w == 500 && (!strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "HTTP Status 500")) {
			t.Errorf("injected error is not the container's HTML page: %q %s", r.header.Get("Content-Type"), r.body)
		}
	}
	// Other endpoints are unaffected and do not consume random numbers.
	decode[xmlKategorien](t, get(t, srv, "/shop/categories.do", nil))
	if r := get(t, srv, "/shop/orderStatus.do", vals("ord_no", "500001")); r.status != 500 {
		t.Errorf("fifth request: %d, want 500 (sequence restarts at 0.1)", r.status)
	}
}

func TestFaultOutage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault string
		check func(t *testing.T, r response, err error)
	}{
		{"503", `{"endpoint":"catalog.do","outage":true}`, func(t *testing.T, r response, err error) {
			if err != nil || r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
				t.Errorf("got %d %v (err %v), want 503 with Retry-After", r.status, r.header, err)
			}
		}},
		{"connection closed", `{"endpoint":"catalog.do","outage":true,"outage_mode":"close"}`, func(t *testing.T, r response, err error) {
			if err == nil {
				t.Errorf("got a response %d, want the connection closed", r.status)
			}
		}},
		{"wildcard", `{"endpoint":"*","outage":true}`, func(t *testing.T, r response, err error) {
			if err != nil || r.status != http.StatusServiceUnavailable {
				t.Errorf("got %d (err %v), want 503", r.status, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, openShop(t, Config{Products: 20}))
			if code, l := setFault(t, srv, tc.fault); code != http.StatusOK || len(l.Faults) != 1 {
				t.Fatalf("setting fault: %d %+v", code, l)
			}
			r, err := fetch(srv, http.MethodGet, "/shop/catalog.do", nil)
			tc.check(t, r, err)
			// The admin endpoint itself never fails, so the fault can be lifted.
			req, _ := http.NewRequest(http.MethodDelete, srv.URL+faultsPath, nil)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			decode[catalogPage](t, get(t, srv, "/shop/catalog.do", nil))
		})
	}
}

func TestFaultAdmin(t *testing.T) {
	t.Parallel()
	srv := serve(t, openShop(t, Config{Products: 20, FaultRand: sequence(0)}))
	list := func() []Fault {
		t.Helper()
		r := get(t, srv, faultsPath, nil)
		var l faultList
		if err := json.Unmarshal(r.body, &l); err != nil || r.status != 200 {
			t.Fatalf("GET faults: %d %s", r.status, r.body)
		}
		return l.Faults
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("faults active by default: %+v", got)
	}
	setFault(t, srv, `{"endpoint":"catalog.do","error_rate":1}`)
	setFault(t, srv, `{"endpoint":"*","latency_ms":0,"error_rate":1}`)
	// Form-encoded works too (an operator with curl -d).
	if r := post(t, srv, faultsPath, vals("endpoint", "/shop/orderStatus.do", "outage", "on")); r.status != 200 {
		t.Fatalf("form POST: %d %s", r.status, r.body)
	}
	got := list()
	if len(got) != 3 || got[0].Endpoint != "*" || got[1].Endpoint != "/shop/catalog.do" || !got[2].Outage || got[2].OutageMode != "503" {
		t.Fatalf("listed %+v", got)
	}
	// A specific fault wins over the wildcard; here both fail requests.
	if r := get(t, srv, "/shop/categories.do", nil); r.status != 500 {
		t.Errorf("wildcard error rate not applied: %d", r.status)
	}
	if r := get(t, srv, "/shop/orderStatus.do", vals("ord_no", "1")); r.status != 503 {
		t.Errorf("specific outage not applied over wildcard: %d", r.status)
	}

	// An all-zero fault removes the endpoint's entry.
	setFault(t, srv, `{"endpoint":"catalog.do"}`)
	if got := list(); len(got) != 2 {
		t.Errorf("after zero fault: %+v", got)
	}
	if r := do(t, srv, http.MethodDelete, faultsPath+"?endpoint=*", nil); r.status != 200 {
		t.Errorf("DELETE one: %d", r.status)
	}
	if got := list(); len(got) != 1 || got[0].Endpoint != "/shop/orderStatus.do" {
		t.Errorf("after DELETE one: %+v", got)
	}
	do(t, srv, http.MethodDelete, faultsPath, nil)
	if got := list(); len(got) != 0 {
		t.Errorf("after DELETE all: %+v", got)
	}
	decode[xmlKategorien](t, get(t, srv, "/shop/categories.do", nil))

	for _, bad := range []string{
		`{"endpoint":"nothing.do","latency_ms":5}`,
		`{"endpoint":"catalog.do","error_rate":1.5}`,
		`{"endpoint":"catalog.do","latency_ms":-1}`,
		`{"endpoint":"catalog.do","outage":true,"outage_mode":"explode"}`,
		`{"endpoint":"catalog.do","outage_mode":"close"}`,
		`{"endpoint":"admin/faults","outage":true}`,
		`{"endpoint":"catalog.do","latency":5}`,
		`{"endpoint":`,
	} {
		res, err := srv.Client().Post(srv.URL+faultsPath, "application/json", strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		var e adminError
		_ = json.NewDecoder(res.Body).Decode(&e)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || e.Code != "BAD_FAULT" || e.Message == "" {
			t.Errorf("%s: %d %+v, want 400 BAD_FAULT", bad, res.StatusCode, e)
		}
	}
	if got := list(); len(got) != 0 {
		t.Errorf("rejected faults were stored: %+v", got)
	}
}
