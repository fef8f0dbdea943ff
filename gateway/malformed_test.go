package gateway

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
)

// rawExchange writes raw bytes to the gateway and reads one response. A nil
// response means the gateway closed the connection without answering.
func rawExchange(t *testing.T, addr, raw string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

type errBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"requestId"`
}

func decodeErr(t *testing.T, b []byte) errBody {
	t.Helper()
	var e errBody
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body is not JSON: %q", b)
	}
	if e.Code == "" || e.Message == "" || e.RequestID == "" {
		t.Fatalf("error body misses a field: %q", b)
	}
	return e
}

func TestMalformedRequestsNeverReachUpstream(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	cfg := testConfig(t, map[string]string{"legacy": up.URL}, nil, func(c *config.Config) {
		c.Limits.MaxRequestBodyBytes = 1024
	})
	r := start(t, cfg, nil)
	cases := []struct {
		name string
		raw  string
		code string // expected error code when the gateway answers
	}{
		{"conflicting content-length", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", CodeBadRequest},
		{"content-length and transfer-encoding", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", CodeBadRequest},
		{"unknown transfer-encoding", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", CodeBadRequest},
		{"missing host", "GET /x HTTP/1.1\r\nUser-Agent: t\r\n\r\n", CodeBadRequest},
		{"missing host, HTTP/1.0", "GET /x HTTP/1.0\r\nUser-Agent: t\r\n\r\n", CodeBadRequest},
		{"empty host", "GET /x HTTP/1.1\r\nHost:\r\n\r\n", CodeBadRequest},
		{"NUL in header value", "GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n", CodeBadRequest},
		{"bare CR in header value", "GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n", CodeBadRequest},
		{"body too large", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4096\r\n\r\n" + strings.Repeat("x", 4096), CodeBodyTooLarge},
		{"encoded slash", "GET /shop/%2F../admin HTTP/1.1\r\nHost: a\r\n\r\n", CodeBadRequest},
		{"NUL in path", "GET /shop/%00 HTTP/1.1\r\nHost: a\r\n\r\n", CodeBadRequest},
		{"asterisk form", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", CodeBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawExchange(t, r.addr, tc.raw)
			if resp == nil {
				t.Fatal("connection closed without a response")
			}
			{
				if resp.StatusCode < 400 || resp.StatusCode >= 500 {
					t.Fatalf("status %d, want a 4xx refusal", resp.StatusCode)
				}
				if e := decodeErr(t, body); e.Code != tc.code {
					t.Fatalf("code %s, want %s", e.Code, tc.code)
				}
			}
		})
	}
	if n := up.hits.Load(); n != 0 {
		t.Fatalf("upstream saw %d malformed requests", n)
	}
}
