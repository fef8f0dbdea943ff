package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
)

// conformanceCase is one raw HTTP/1.1 request written to the gateway's
// socket, what Ficus must do with it, and, for comparison, what nginx
// 1.22.1 did with the same bytes ("location / { proxy_pass http://up;
// proxy_http_version 1.1; }", every other setting at its default; run
// against the same echo upstream). Ficus is at least as strict on every
// case it does not let a route opt into.
type conformanceCase struct {
	name string
	raw  string
	// status the client must get; 200 means forwarded to the upstream.
	status int
	code   string // error code of a refusal
	route  string // route that must have matched ("" : not checked)
	// seen, for a forwarded request, checks what the upstream received
	// (the echo upstream's body: the request line and headers).
	seen  func(echo string) error
	nginx string
}

// echoRequest writes back the request line and every header as received.
func echoRequest(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", r.Method, r.RequestURI)
	for k, vs := range r.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	w.Write([]byte(b.String()))
}

func lacks(names ...string) func(string) error {
	return func(echo string) error {
		for _, n := range names {
			if strings.Contains(strings.ToLower(echo), "\n"+strings.ToLower(n)+":") {
				return fmt.Errorf("upstream received %s", n)
			}
		}
		return nil
	}
}

func has(lines ...string) func(string) error {
	return func(echo string) error {
		for _, l := range lines {
			if !strings.Contains(echo, l) {
				return fmt.Errorf("upstream did not receive %q", l)
			}
		}
		return nil
	}
}

func all(fs ...func(string) error) func(string) error {
	return func(echo string) error {
		for _, f := range fs {
			if err := f(echo); err != nil {
				return err
			}
		}
		return nil
	}
}

func manyConnectionNames(n int) (conn, fields string, names []string) {
	var c, f strings.Builder
	for i := range n {
		name := fmt.Sprintf("X-Hop-%02d", i)
		names = append(names, name)
		if i > 0 {
			c.WriteString(", ")
		}
		c.WriteString(name)
		fmt.Fprintf(&f, "%s: v\r\n", name)
	}
	return c.String(), f.String(), names
}

var conformanceCases = func() []conformanceCase {
	conn40, fields40, names40 := manyConnectionNames(40)
	return []conformanceCase{
		// Framing.
		{name: "CL+TE, empty chunked body", raw: "POST /shop/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			status: 400, code: CodeBadRequest, nginx: "400"},
		{name: "CL+TE, chunked body", raw: "POST /shop/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			status: 400, code: CodeBadRequest, nginx: "400"},
		{name: "TE+CL order swapped, lower case", raw: "POST /shop/x HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 0\r\n\r\n0\r\n\r\n",
			status: 400, code: CodeBadRequest, nginx: "400"},
		{name: "two Content-Lengths", raw: "POST /shop/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
			status: 400, code: CodeBadRequest, nginx: "400"},
		{name: "unknown Transfer-Encoding", raw: "POST /shop/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			status: 400, code: CodeBadRequest, nginx: "501"},
		{name: "bare LF line ends", raw: "GET /shop/x HTTP/1.1\nHost: a\n\n",
			status: 400, code: CodeBadRequest, nginx: "200, forwarded (bare LF accepted); Ficus refuses at once"},
		{name: "obsolete line folding", raw: "GET /shop/x HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n",
			status: 400, code: CodeBadRequest, nginx: "400"},
		// Header names and hop-by-hop fields.
		{name: "header name with a space", raw: "GET /shop/x HTTP/1.1\r\nHost: a\r\nX Foo: 1\r\n\r\n",
			status: 400, code: CodeBadRequest, nginx: "400"},
		{name: "space before the colon", raw: "GET /shop/x HTTP/1.1\r\nHost: a\r\nX-Foo : 1\r\n\r\n",
			status: 400, code: CodeBadRequest, nginx: "400"},
		{name: "40 names in Connection", raw: "GET /shop/x HTTP/1.1\r\nHost: a\r\nConnection: " + conn40 + "\r\n" + fields40 + "X-Kept: yes\r\n\r\n",
			status: 200, seen: all(lacks(names40...), has("X-Kept: yes")), nginx: "200, all 40 forwarded (Connection-listed names not removed)"},
		{name: "Connection lists X-Request-Id", raw: "GET /shop/x HTTP/1.1\r\nHost: a\r\nConnection: X-Request-Id\r\n\r\n",
			status: 200, seen: has("X-Request-Id: "), nginx: "200 (sets no request id of its own)"},
		{name: "underscore forwarding headers", raw: "GET /shop/x HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\nX_Forwarded_Host: evil\r\nX_Real_IP: 6.6.6.6\r\n\r\n",
			status: 200, seen: all(lacks("X_Forwarded_For", "X_Forwarded_Host", "X_Real_Ip", "X_Real_IP"), has("X-Forwarded-For: 127.0.0.1")), nginx: "200, dropped (underscores_in_headers off)"},
		{name: "X-Real-IP and URL override headers", raw: "GET /shop/x HTTP/1.1\r\nHost: a\r\nX-Real-IP: 6.6.6.6\r\nX-Original-URL: /shop/admin/faults\r\nX-Rewrite-URL: /shop/admin/faults\r\nX-Client-IP: 6.6.6.6\r\n\r\n",
			status: 200, seen: lacks("X-Real-Ip", "X-Original-Url", "X-Rewrite-Url", "X-Client-Ip"), nginx: "200, all four forwarded"},
		{name: "client-sent shadow marker", raw: "POST /shop/x HTTP/1.1\r\nHost: a\r\nX-Ficus-Shadow: 1\r\nContent-Length: 0\r\n\r\n",
			status: 200, seen: lacks("X-Ficus-Shadow"), nginx: "200, forwarded"},
		// Methods.
		{name: "TRACE", raw: "TRACE /shop/x HTTP/1.1\r\nHost: a\r\n\r\n", status: 405, code: CodeMethodNotAllowed, nginx: "405"},
		{name: "CONNECT", raw: "CONNECT /shop/x HTTP/1.1\r\nHost: a\r\n\r\n", status: 405, code: CodeMethodNotAllowed, nginx: "405"},
		{name: "TRACE on a route that allows it", raw: "TRACE /diag/x HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, route: "diag",
			seen: has("TRACE /diag/x"), nginx: "405 (no way to allow it)"},
		// Paths.
		{name: "servlet path parameter", raw: "POST /shop/placeOrder.do;jsessionid=ABC123 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
			status: 200, route: "place-order", seen: has("POST /shop/placeOrder.do;jsessionid=ABC123\n"), nginx: "200, forwarded as received"},
		{name: "path parameter on a middle segment", raw: "GET /shop;v=1/catalog.do HTTP/1.1\r\nHost: a\r\n\r\n",
			status: 200, route: "catalog", seen: has("GET /shop;v=1/catalog.do\n"), nginx: "200, forwarded as received"},
		{name: "dot segment with a parameter", raw: "GET /shop/..;/admin HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, code: CodeBadRequest, nginx: "200, forwarded as received (a servlet legacy resolves it to /admin)"},
		{name: "encoded slash", raw: "GET /shop/%2F../admin HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, code: CodeBadRequest, nginx: "200, forwarded as received"},
		{name: "dot segments", raw: "GET /shop/x/../catalog.do HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, route: "catalog",
			seen: has("GET /shop/catalog.do\n"), nginx: "200, forwarded as received (routed on the normalised path)"},
	}
}()

// TestConformance runs the raw-socket table: framing, header and path
// tricks against a real gateway and a real upstream.
func TestConformance(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, echoRequest)
	routes := []config.Route{
		{Name: "catalog", Path: "/shop/catalog.do", Methods: []string{"GET", "HEAD"}},
		{Name: "place-order", Path: "/shop/placeOrder.do", Methods: []string{"POST"}},
		{Name: "diag", Path: "/diag/*", Methods: []string{"GET", "TRACE"}},
		{Name: "shop", Path: "/shop/*"},
	}
	r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, routes, nil), nil)
	for _, tc := range conformanceCases {
		t.Run(tc.name, func(t *testing.T) {
			before := up.hits.Load()
			began := time.Now()
			resp, body := rawExchange(t, r.addr, tc.raw)
			if resp == nil {
				t.Fatalf("no response (nginx: %s)", tc.nginx)
			}
			if el := time.Since(began); el > 2*time.Second {
				t.Errorf("answered after %s: a refusal must be immediate", el.Round(time.Millisecond))
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (nginx: %s); body %q", resp.StatusCode, tc.status, tc.nginx, body)
			}
			if tc.route != "" && resp.Header.Get(HeaderRoute) != tc.route {
				t.Fatalf("route %q, want %q", resp.Header.Get(HeaderRoute), tc.route)
			}
			hits := up.hits.Load() - before
			if tc.status != 200 {
				if hits != 0 {
					t.Fatalf("refused request reached the upstream")
				}
				if e := decodeErr(t, body); e.Code != tc.code {
					t.Fatalf("code %s, want %s", e.Code, tc.code)
				}
				return
			}
			if hits != 1 {
				t.Fatalf("upstream hits %d, want 1", hits)
			}
			if tc.seen != nil {
				if err := tc.seen(string(body)); err != nil {
					t.Fatalf("%v; upstream saw:\n%s", err, body)
				}
			}
			if strings.Contains(tc.name, "X-Request-Id") {
				if want := "X-Request-Id: " + resp.Header.Get("X-Request-Id") + "\n"; !strings.Contains(string(body), want) {
					t.Fatalf("upstream did not get the gateway's request id %q:\n%s", want, body)
				}
			}
		})
	}
}

// TestBareLFCheckLeavesBodiesAlone drives the bare-LF check where it could
// go wrong: a head arriving one byte at a time, bodies full of bare LFs on
// a keep-alive connection (also after a 100 Continue), and a bare-LF head
// split across writes, which must still be refused at once.
func TestBareLFCheckLeavesBodiesAlone(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	r := start(t, testConfig(t, map[string]string{"legacy": up.URL}, nil, nil), nil)
	conn, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	body := "a\nb\n\nc\r\n\n"
	// 1: a head written one byte at a time.
	head := "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n"
	for i := range len(head) {
		if _, err := conn.Write([]byte{head[i]}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	expectBody(t, br, body)
	// 2: same connection, Expect: 100-continue, body after the interim answer.
	if _, err := io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: "+fmt.Sprint(len(body))+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue, got %q %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // the blank line after it
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	expectBody(t, br, body)
	// 3: a bare-LF head split across two writes on the same connection.
	began := time.Now()
	if _, err := io.WriteString(conn, "GET /x HTTP/1.1\r"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "\nHost: a\n\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || decodeErr(t, b).Code != CodeBadRequest || time.Since(began) > 2*time.Second {
		t.Fatalf("bare LF: %d %q after %s", resp.StatusCode, b, time.Since(began))
	}
}

func expectBody(t *testing.T, br *bufio.Reader, want string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(b) != want {
		t.Fatalf("status %d body %q (%v), want 200 %q", resp.StatusCode, b, err, want)
	}
}
