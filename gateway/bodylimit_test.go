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
)

// TestOversizeBodyGets413Reliably: 64 MiB against the 4 MiB default limit.
// With Expect: 100-continue the gateway answers 413 instead of inviting
// the body. Without it the client is already sending when the 413 goes
// out. Closing a socket with unread data makes the kernel send a reset,
// and a reset that overtakes the answer (a retransmission, a client that
// reads late) destroys it: seen once in 16 runs over a real link. On
// loopback the loss itself is rare, but its cause is visible: the
// client's writes fail. So the test asserts the remedy, a lingering
// close: the gateway half-closes after its 413 and reads and discards the
// rest of the body (bounded in time), so the client's whole body is
// accepted, then it reads the 413 and a clean end of stream.
func TestOversizeBodyGets413Reliably(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	cfg := testConfig(t, map[string]string{"legacy": up.URL}, nil, nil)
	if cfg.Limits.MaxRequestBodyBytes != 4<<20 {
		t.Fatalf("default body limit %d, want 4 MiB", cfg.Limits.MaxRequestBodyBytes)
	}
	r := start(t, cfg, nil)
	const size = 64 << 20
	chunk := []byte(strings.Repeat("x", 64<<10))

	t.Run("Expect: 100-continue", func(t *testing.T) {
		for i := range 4 {
			conn := dial(t, r.addr)
			fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", size)
			br := bufio.NewReader(conn)
			line, err := br.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "HTTP/1.1 413") {
				t.Fatalf("run %d: first answer %q (%v), want 413 before any body is invited", i, line, err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(line), br)), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if e := decodeErr(t, b); e.Code != CodeBodyTooLarge {
				t.Fatalf("code %s", e.Code)
			}
			conn.Close()
		}
	})
	t.Run("body sent at once", func(t *testing.T) {
		for i := range 3 {
			conn := dial(t, r.addr)
			fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size)
			for n := 0; n < size; n += len(chunk) {
				if _, err := conn.Write(chunk); err != nil {
					t.Fatalf("run %d: the gateway reset the connection after %d bytes: %v", i, n, err)
				}
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("run %d: the 413 was lost: %v", i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 413 || decodeErr(t, b).Code != CodeBodyTooLarge {
				t.Fatalf("run %d: %d %q", i, resp.StatusCode, b)
			}
			if n, err := conn.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("run %d: after the 413: %d bytes, %v; want a clean end of stream", i, n, err)
			}
			conn.Close()
		}
	})
	if up.hits.Load() != 0 {
		t.Fatal("an oversize body reached the upstream")
	}
	// A body within the limit still flows, with and without Expect.
	conn := dial(t, r.addr)
	body := strings.Repeat("y", 1<<20)
	fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(body))
	br := bufio.NewReader(conn)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("a body within the limit: %q, want 100 Continue", line)
	}
	br.ReadString('\n')
	io.WriteString(conn, body)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a body within the limit: %v %v", resp, err)
	}
	conn.Close()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
