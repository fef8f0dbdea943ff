package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
)

// legacyShop imitates the monolith: form posts, HTML pages, business errors
// inside a 200, and a large catalogue export.
func legacyShop(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/shop/catalog.do":
		w.Header().Set("Content-Type", "text/xml; charset=ISO-8859-1")
		w.Header().Set("Set-Cookie", "JSESSIONID=abc; Path=/shop; HttpOnly")
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(w, `<catalog page=%q><product sku="A1"/></catalog>`, r.URL.Query().Get("page"))
	case "/shop/placeOrder.do":
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", 400)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		if r.PostForm.Get("qty") == "0" {
			// The legacy way of failing: a 200 with an error inside.
			w.Write([]byte(`<result><error code="E042">quantity must be positive</error></result>`))
			return
		}
		fmt.Fprintf(w, `<result><order id="7" sku=%q qty=%q/></result>`, r.PostForm.Get("sku"), r.PostForm.Get("qty"))
	case "/shop/product.html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("ETag", `"v1"`)
		w.Write([]byte("<!doctype html><html><body><h1>Teapot</h1></body></html>"))
	case "/shop/export.do":
		w.Header().Set("Content-Type", "text/csv")
		w.Write(bytes.Repeat([]byte("sku,name,price\n"), 200_000)) // 3 MB
	case "/shop/missing.do":
		http.Error(w, "<error>no such product</error>", http.StatusNotFound)
	default:
		w.WriteHeader(http.StatusTeapot)
	}
}

// endToEnd is the set of headers compared direct vs through the gateway
// (Date changes with the clock; X-Ficus-* and X-Request-Id are added).
func endToEnd(h http.Header) http.Header {
	out := h.Clone()
	for _, k := range []string{"Date", "X-Ficus-Route", "X-Ficus-Backend", "X-Request-Id"} {
		out.Del(k)
	}
	return out
}

func TestLegacyRequestsPassThroughUnchanged(t *testing.T) {
	t.Parallel()
	leg := newUpstream(t, legacyShop)
	routes := []config.Route{
		{Name: "legacy-catalog", Path: "/shop/catalog.do", Methods: []string{"GET", "HEAD"}},
		{Name: "legacy-place-order", Path: "/shop/placeOrder.do", Methods: []string{"POST"}},
		{Name: "legacy-shop", Path: "/shop/*"},
	}
	r := start(t, testConfig(t, map[string]string{"legacy": leg.URL}, routes, nil), nil)
	form := url.Values{"sku": {"A1"}, "qty": {"2"}}.Encode()
	badForm := url.Values{"sku": {"A1"}, "qty": {"0"}}.Encode()
	cases := []struct {
		name, method, path, body, route string
	}{
		{"GET xml", "GET", "/shop/catalog.do?page=2", "", "legacy-catalog"},
		{"HEAD xml", "HEAD", "/shop/catalog.do?page=2", "", "legacy-catalog"},
		{"form POST", "POST", "/shop/placeOrder.do", form, "legacy-place-order"},
		{"business error in 200", "POST", "/shop/placeOrder.do", badForm, "legacy-place-order"},
		{"HTML page", "GET", "/shop/product.html", "", "legacy-shop"},
		{"large body", "GET", "/shop/export.do", "", "legacy-shop"},
		{"404 page", "GET", "/shop/missing.do", "", "legacy-shop"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mk := func(base string) *http.Request {
				req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				if tc.body != "" {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				return req
			}
			direct, dbody := r.do(t, mk(leg.URL))
			via, vbody := r.do(t, mk(r.url))
			if direct.StatusCode != via.StatusCode {
				t.Fatalf("status direct %d, via gateway %d", direct.StatusCode, via.StatusCode)
			}
			if !bytes.Equal(dbody, vbody) {
				t.Fatalf("body differs: direct %d bytes, via gateway %d bytes (%.80q)", len(dbody), len(vbody), vbody)
			}
			if d, v := endToEnd(direct.Header), endToEnd(via.Header); fmt.Sprint(d) != fmt.Sprint(v) {
				t.Fatalf("headers differ:\ndirect %v\nvia    %v", d, v)
			}
			if got := via.Header.Get(HeaderRoute); got != tc.route {
				t.Fatalf("X-Ficus-Route = %q, want %q", got, tc.route)
			}
			if got := via.Header.Get(HeaderBackend); got != "legacy" {
				t.Fatalf("X-Ficus-Backend = %q", got)
			}
		})
	}
	for _, m := range []struct {
		route, method, code string
		want                float64
	}{
		{"legacy-catalog", "GET", "200", 1},
		{"legacy-catalog", "HEAD", "200", 1},
		{"legacy-place-order", "POST", "200", 2},
		{"legacy-shop", "GET", "200", 2},
		{"legacy-shop", "GET", "404", 1},
	} {
		if got := r.counter(t, MetricRequests, "route", m.route, "backend", "legacy", "method", m.method, "code", m.code); got != m.want {
			t.Errorf("%s{route=%s,method=%s,code=%s} = %v, want %v", MetricRequests, m.route, m.method, m.code, got, m.want)
		}
	}
	if got := r.counter(t, MetricRequestDuration, "route", "legacy-shop", "backend", "legacy"); got != 3 {
		t.Errorf("duration observations for legacy-shop = %v, want 3", got)
	}
	if got := r.counter(t, MetricDecisions, "route", "legacy-shop", "backend", "legacy", "reason", "default"); got != 3 {
		t.Errorf("decisions for legacy-shop = %v, want 3", got)
	}
}

func TestNastyPathsNeverReachARefusedPath(t *testing.T) {
	t.Parallel()
	leg := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.RequestURI)) })
	cat := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.RequestURI)) })
	routes := []config.Route{
		// The admin area only takes POSTs from the operator tool: a GET that
		// reaches /shop/admin/* would be a bypass.
		{Name: "shop-admin", Path: "/shop/admin/*", Methods: []string{"POST"}},
		{Name: "shop", Path: "/shop/*"},
		{Name: "products", Path: "/api/v1/products/*", New: "catalog", Canary: 100},
	}
	r := start(t, testConfig(t, map[string]string{"legacy": leg.URL, "catalog": cat.URL}, routes, nil), nil)
	cases := []struct {
		path     string
		status   int
		route    string // "" when refused before routing
		upstream string // path+query the upstream must see; "" for none
	}{
		{"/shop/../admin", 200, "default", "/admin"},
		{"/shop/%2e%2e/x", 200, "default", "/x"},
		{"//shop//catalog.do", 200, "shop", "/shop/catalog.do"},
		{`/shop\catalog.do?x=1`, 200, "shop", "/shop/catalog.do?x=1"},
		{"/shop/catalog.do?next=/../admin&q=%2F", 200, "shop", "/shop/catalog.do?next=/../admin&q=%2F"},
		{"/shop/%2F..", 400, "", ""},
		{"/shop/%2f../admin/faults", 400, "", ""},
		{"/api/v1/products/..%2f..%2fshop/admin/faults", 400, "", ""},
		{"/api/v1/products/../../../shop/admin/faults", 405, "shop-admin", ""},
		{"/shop/./admin/faults", 405, "shop-admin", ""},
		{"/shop/%61dmin/faults", 405, "shop-admin", ""},
		{`/shop\admin\faults`, 405, "shop-admin", ""},
		{"/shop//admin//faults", 405, "shop-admin", ""},
		{"/shop/x/%2E%2E/admin/faults", 405, "shop-admin", ""},
		{"/shop/..;/shop/admin/faults", 400, "", ""},
		{"/api/v1/products/a/../b", 200, "products", "/api/v1/products/b"},
		{"/api/v1/products/%7Esku", 200, "products", "/api/v1/products/~sku"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			before := leg.hits.Load() + cat.hits.Load()
			resp, body := rawExchange(t, r.addr, "GET "+tc.path+" HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n")
			if resp == nil {
				t.Fatal("no response")
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if tc.route != "" && resp.Header.Get(HeaderRoute) != tc.route {
				t.Fatalf("route %q, want %q", resp.Header.Get(HeaderRoute), tc.route)
			}
			hits := leg.hits.Load() + cat.hits.Load() - before
			if tc.upstream == "" {
				if hits != 0 {
					t.Fatalf("a refused request reached an upstream")
				}
				decodeErr(t, body)
				return
			}
			if hits != 1 || string(body) != tc.upstream {
				t.Fatalf("upstream saw %q (hits %d), want %q", body, hits, tc.upstream)
			}
		})
	}
}

func TestHopByHopHeadersRemovedBothWays(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "Trailer", "Upgrade", "X-Secret", "X-Kept", "Expect", "X-Ficus-Override-Token"} {
			if v := r.Header.Values(k); len(v) > 0 {
				fmt.Fprintf(&b, "%s=%s;", k, strings.Join(v, ","))
			}
		}
		w.Header().Set("Connection", "X-Internal")
		w.Header().Set("X-Internal", "upstream-only")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Set("Upgrade", "h2c")
		w.Header().Set("X-Public", "yes")
		w.Write([]byte(b.String()))
	})
	r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, nil, nil), nil)
	resp, body := rawExchange(t, r.addr, "GET /x HTTP/1.1\r\nHost: a\r\n"+
		"Connection: keep-alive, X-Secret\r\nKeep-Alive: timeout=9\r\nProxy-Connection: keep-alive\r\n"+
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: websocket\r\n"+
		"X-Secret: s3cr3t\r\nX-Kept: yes\r\nX-Ficus-Override-Token: tester-secret-token\r\n\r\n")
	if resp == nil {
		t.Fatal("no response")
	}
	if string(body) != "X-Kept=yes;" {
		t.Fatalf("upstream received hop-by-hop fields: %q", body)
	}
	for _, k := range []string{"X-Internal", "Keep-Alive", "Proxy-Authenticate", "Upgrade"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("client received %s: %q", k, v)
		}
	}
	if resp.Header.Get("X-Public") != "yes" {
		t.Errorf("end-to-end header lost")
	}
}

func TestForwardedHeaders(t *testing.T) {
	t.Parallel()
	echo := func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "xff=%s|proto=%s|host=%s|fwd=%s|uphost=%s",
			r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"),
			r.Header.Get("Forwarded"), r.Host)
	}
	spoof := "GET /x HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n" +
		"X-Forwarded-Host: evil.example\r\nForwarded: for=6.6.6.6\r\nConnection: close\r\n\r\n"
	t.Run("untrusted peer", func(t *testing.T) {
		t.Parallel()
		up := newUpstream(t, echo)
		r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, nil, nil), nil)
		_, body := rawExchange(t, r.addr, spoof)
		want := "xff=127.0.0.1|proto=http|host=shop.example|fwd=|uphost=" + strings.TrimPrefix(up.URL, "http://")
		if string(body) != want {
			t.Fatalf("upstream saw %q, want %q", body, want)
		}
	})
	t.Run("trusted peer", func(t *testing.T) {
		t.Parallel()
		up := newUpstream(t, echo)
		r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, nil, func(c *config.Config) {
			c.TrustedProxies = []string{"127.0.0.0/8"}
		}), nil)
		_, body := rawExchange(t, r.addr, spoof)
		want := "xff=6.6.6.6, 127.0.0.1|proto=https|host=evil.example|fwd=for=6.6.6.6|uphost=" + strings.TrimPrefix(up.URL, "http://")
		if string(body) != want {
			t.Fatalf("upstream saw %q, want %q", body, want)
		}
	})
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Header.Get("X-Request-Id"))) })
	// The test client connects from 127.0.0.1: a trusted proxy here.
	r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, nil, func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1"}
	}), nil)
	t.Run("untrusted peer never chooses the id", func(t *testing.T) {
		r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, nil, nil), nil)
		resp, body := r.get(t, "/x", "X-Request-Id", "abc-123_X.y")
		if got := resp.Header.Get("X-Request-Id"); got == "abc-123_X.y" || string(body) != got || !validID([]byte(got)) {
			t.Fatalf("client sent abc-123_X.y; response id %q, upstream saw %q", got, body)
		}
	})
	cases := []struct {
		name, in string
		kept     bool
	}{
		{"valid kept", "abc-123_X.y", true},
		{"absent generated", "", false},
		{"space replaced", "abc 123", false},
		{"too long replaced", strings.Repeat("a", 129), false},
		{"max length kept", strings.Repeat("a", 128), true},
		{"quote replaced", `a"b`, false},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.in != "" {
				hdr = []string{"X-Request-Id", tc.in}
			}
			resp, body := r.get(t, "/x", hdr...)
			echoed := resp.Header.Get("X-Request-Id")
			if echoed != string(body) {
				t.Fatalf("echoed %q but upstream got %q", echoed, body)
			}
			if tc.kept != (echoed == tc.in) {
				t.Fatalf("in %q, out %q, want kept=%v", tc.in, echoed, tc.kept)
			}
			if !validID([]byte(echoed)) {
				t.Fatalf("invalid id %q", echoed)
			}
			if !tc.kept {
				if seen[echoed] {
					t.Fatalf("generated id %q twice", echoed)
				}
				seen[echoed] = true
			}
		})
	}
}

func TestLargeResponseStreams(t *testing.T) {
	t.Parallel()
	const first, rest = 1 << 20, 3 << 20
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", fmt.Sprint(first+rest))
		}
		for n := 0; n < first; n += len(chunk) {
			w.Write(chunk)
		}
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		for n := 0; n < rest; n += len(chunk) {
			w.Write(chunk)
		}
	})
	r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, nil, nil), nil)
	want := sha256.New()
	for range (first + rest) / len(chunk) {
		want.Write(chunk)
	}
	for _, q := range []string{"", "?chunked=1"} {
		resp, err := r.clients.Get(r.url + "/export" + q)
		if err != nil {
			t.Fatal(err)
		}
		// The first MiB must arrive while the upstream is still holding the
		// rest back: a gateway that buffered the whole body would send
		// nothing until release.
		got := make(chan error, 1)
		head := make([]byte, first)
		go func() { _, err := io.ReadFull(resp.Body, head); got <- err }()
		select {
		case err := <-got:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: first bytes did not arrive before the upstream finished: response is buffered", q)
		}
		release <- struct{}{}
		tail, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		h.Write(head)
		h.Write(tail)
		if len(head)+len(tail) != first+rest || !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
			t.Fatalf("%s: body corrupted: %d bytes", q, len(head)+len(tail))
		}
	}
}

func TestClientConnectionCloseHonoured(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "close=%v", r.Close)
	})
	r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, nil, nil), nil)
	conn, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	all, err := io.ReadAll(conn) // ends only if the gateway closes the connection
	if err != nil {
		t.Fatalf("gateway kept the connection open: %v", err)
	}
	if !bytes.Contains(all, []byte("close=false")) {
		t.Fatalf("Connection: close reached the upstream or no answer: %q", all)
	}
}

// A route with bufferResponses reads answers whole: small ones pass
// unchanged, whatever their framing; one over the threshold is refused
// with a structured 502 rather than streamed, while the same answer on a
// streaming route arrives whole.
func TestBufferedRouteRefusesOversizedAnswers(t *testing.T) {
	t.Parallel()
	const limit = 4096
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "yes")
		w.Write(bytes.Repeat([]byte("x"), n))
	})
	routes := []config.Route{
		{Name: "api", Path: "/api/*", BufferResponses: true},
		{Name: "export", Path: "/export/*"},
	}
	r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, routes, func(c *config.Config) {
		c.Limits.StreamResponseThresholdBytes = limit
	}), nil)
	for _, tc := range []struct {
		path   string
		status int
		size   int
	}{
		{"/api/small?n=100", 200, 100},
		{"/api/small?n=100&chunked=1", 200, 100},
		{"/api/edge?n=4096", 200, 4096},
		{"/api/big?n=4097", 502, -1},
		{"/api/big?n=20000&chunked=1", 502, -1},
		{"/export/big?n=20000", 200, 20000},
		{"/export/big?n=20000&chunked=1", 200, 20000},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := r.get(t, tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %.200s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 502 {
				var e struct{ Code, Message, RequestID string }
				if err := json.Unmarshal(body, &e); err != nil || e.Code != CodeUpstreamError || e.Message == "" || e.RequestID == "" {
					t.Fatalf("502 body %q: want code %s with a message and the request id", body, CodeUpstreamError)
				}
				return
			}
			if len(body) != tc.size || strings.Trim(string(body), "x") != "" || resp.Header.Get("X-Upstream") != "yes" {
				t.Fatalf("got %d bytes (X-Upstream %q), want %d bytes of the upstream's answer", len(body), resp.Header.Get("X-Upstream"), tc.size)
			}
		})
	}
	if n := r.counter(t, MetricUpstreamErrors, "route", "api", "backend", "legacy", "reason", "other"); n != 2 {
		t.Fatalf("%s{route=api,reason=other} = %v, want 2 (the two oversized answers)", MetricUpstreamErrors, n)
	}
}
