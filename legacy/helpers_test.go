package legacy

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var testStart = time.Date(2025, time.March, 14, 10, 30, 0, 0, time.UTC)

// testClock is an injectable clock that tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// openShop opens a shop on a fresh file in t.TempDir() (unless cfg names
// one) with a fixed clock, and closes it when the test ends.
func openShop(t testing.TB, cfg Config) *Shop {
	t.Helper()
	if cfg.DBPath == "" {
		cfg.DBPath = filepath.Join(t.TempDir(), "shop.db")
	}
	if cfg.Now == nil {
		cfg.Now = (&testClock{now: testStart}).Now
	}
	s, err := Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// serve starts the shop on a loopback httptest server.
func serve(t testing.TB, s *Shop) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(s.Handler())
	srv.Client().Timeout = 30 * time.Second
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t testing.TB, srv *httptest.Server, method, path string, form url.Values) response {
	t.Helper()
	r, err := fetch(srv, method, path, form)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fetch is do without the testing.TB, for goroutines (which must not call
// t.Fatal).
func fetch(srv *httptest.Server, method, path string, form url.Values) (response, error) {
	var body io.Reader
	target := srv.URL + path
	if method == http.MethodPost {
		body = strings.NewReader(form.Encode())
	} else if len(form) > 0 {
		target += "?" + form.Encode()
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		return response{}, err
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: reading body: %w", method, path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}, nil
}

func get(t testing.TB, srv *httptest.Server, path string, form url.Values) response {
	t.Helper()
	return do(t, srv, http.MethodGet, path, form)
}

func post(t testing.TB, srv *httptest.Server, path string, form url.Values) response {
	t.Helper()
	return do(t, srv, http.MethodPost, path, form)
}

// decode parses an XML 200 response into v, failing on an <error> body.
func decode[T any](t testing.TB, r response) T {
	t.Helper()
	var v T
	if r.status != http.StatusOK {
		t.Fatalf("status %d, body %s", r.status, r.body)
	}
	if code := errorCode(r); code != "" {
		t.Fatalf("business error %s: %s", code, r.body)
	}
	if err := xml.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding %T: %v\n%s", v, err, r.body)
	}
	return v
}

// errorCode returns the code of an <error> body, or "".
func errorCode(r response) string {
	var e xmlError
	if xml.Unmarshal(r.body, &e) != nil {
		return ""
	}
	return e.Code
}

// wantError asserts the legacy's business error shape: HTTP 200, XML, and
// the given code.
func wantError(t testing.TB, r response, code string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("business error should be HTTP 200, got %d: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != xmlContentType {
		t.Errorf("Content-Type = %q, want %q", ct, xmlContentType)
	}
	if got := errorCode(r); got != code {
		t.Fatalf("error code = %q, want %q; body %s", got, code, r.body)
	}
}

func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// setStock puts an article's stock to n directly in the database, to set up
// a scenario the seed does not happen to contain.
func setStock(t testing.TB, s *Shop, artNr string, n int) {
	t.Helper()
	if _, err := s.db.W.Exec(`UPDATE artikel SET bestand = ? WHERE art_nr = ?`, n, artNr); err != nil {
		t.Fatal(err)
	}
}

func stockOf(t testing.TB, srv *httptest.Server, artNr string) int {
	t.Helper()
	return decode[xmlArtikel](t, get(t, srv, "/shop/productDetail.do", vals("art_nr", artNr))).Bestand
}

// aCustomer is a seeded customer number (customers are numbered from
// firstCustNo).
const aCustomer = "100001"
