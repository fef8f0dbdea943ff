package proxy

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-acc
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// waitPeerClosed polls until the kernel has the peer's FIN (bounded).
func waitPeerClosed(t *testing.T, c net.Conn) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !peerClosed(c) {
		if time.Now().After(deadline) {
			t.Fatal("the peer's close never arrived")
		}
		time.Sleep(time.Millisecond) // polling interval
	}
}

func TestStaleConnRules(t *testing.T) {
	t.Parallel()
	t.Run("reused and closed by the upstream: nothing is written", func(t *testing.T) {
		t.Parallel()
		raw, srv := tcpPair(t)
		c := newStaleConn(raw, nil)
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		srv.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		buf := make([]byte, 64)
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		if peerClosed(raw) {
			t.Fatal("an open, quiet connection must not look closed")
		}
		io.ReadFull(srv, make([]byte, len("GET / HTTP/1.1\r\n\r\n")))
		srv.Close()
		waitPeerClosed(t, raw)
		if n, err := c.Write([]byte("POST /order HTTP/1.1\r\n\r\n")); n != 0 || !errors.Is(err, ErrStaleConn) {
			t.Fatalf("write on a reused, closed connection: %d, %v; want 0, ErrStaleConn", n, err)
		}
		if Classify(ErrStaleConn) != FailReset {
			t.Fatal("a stale connection that fails again is a reset")
		}
	})
	t.Run("a safe request on a reused connection goes out unprobed and is stale if the connection died", func(t *testing.T) {
		t.Parallel()
		raw, srv := tcpPair(t)
		var lost atomic.Uint64
		c := newStaleConn(raw, &lost)
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		srv.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		if _, err := c.Read(make([]byte, 64)); err != nil {
			t.Fatal(err)
		}
		io.ReadFull(srv, make([]byte, len("GET / HTTP/1.1\r\n\r\n")))
		srv.Close()
		waitPeerClosed(t, raw)
		// No peek: the write goes out although the FIN is waiting (a POST
		// would have been stopped here, as the first subtest shows).
		if _, err := c.Write([]byte("GET /again HTTP/1.1\r\n\r\n")); err != nil {
			t.Fatalf("a GET on a reused connection is written without the peek; got %v", err)
		}
		n, err := c.Read(make([]byte, 64))
		if n != 0 || !errors.Is(err, ErrStaleConn) {
			t.Fatalf("the answer to a safe request never began on a dead connection: %d, %v; want 0, ErrStaleConn", n, err)
		}
		if lost.Load() != 1 {
			t.Fatalf("lost = %d, want 1: Do learns of the dead connection from this counter", lost.Load())
		}
		if _, err := c.Write([]byte("GET /third HTTP/1.1\r\n\r\n")); !errors.Is(err, ErrStaleConn) {
			t.Fatalf("a dead connection takes no more requests; got %v", err)
		}
	})
	t.Run("an answer that began is not stale", func(t *testing.T) {
		t.Parallel()
		raw, srv := tcpPair(t)
		var lost atomic.Uint64
		c := newStaleConn(raw, &lost)
		c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		srv.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		c.Read(make([]byte, 64))
		if _, err := c.Write([]byte("GET /again HTTP/1.1\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		srv.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"))
		srv.Close()
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			if n == 0 && err != nil {
				if errors.Is(err, ErrStaleConn) || lost.Load() != 0 {
					t.Fatalf("the upstream had begun to answer: a cut answer is a reset, not a stale connection (%v)", err)
				}
				break
			}
		}
	})
	t.Run("first use is never judged stale", func(t *testing.T) {
		t.Parallel()
		raw, srv := tcpPair(t)
		srv.Close()
		waitPeerClosed(t, raw)
		c := newStaleConn(raw, nil)
		if _, err := c.Write([]byte("POST / HTTP/1.1\r\n\r\n")); errors.Is(err, ErrStaleConn) {
			t.Fatal("a connection that carried nothing yet is fresh by definition: its failure is an ordinary one")
		}
	})
	t.Run("bytes on the wire: no longer stale", func(t *testing.T) {
		t.Parallel()
		raw, srv := tcpPair(t)
		c := newStaleConn(raw, nil)
		c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		srv.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		c.Read(make([]byte, 64))
		if _, err := c.Write([]byte("POST /order HTTP/1.1\r\n")); err != nil {
			t.Fatal(err)
		}
		srv.Close()
		waitPeerClosed(t, raw)
		// The head is out; the upstream may have acted on it. A failure of
		// the rest of the request is not ErrStaleConn.
		for range 3 {
			if _, err := c.Write([]byte("Content-Length: 0\r\n\r\n")); errors.Is(err, ErrStaleConn) {
				t.Fatal("a request partly sent must never be judged unsent")
			}
		}
	})
}

func TestSafeRequestReadsTheMethodOfTheRequestLine(t *testing.T) {
	// Not parallel: AllocsPerRun needs the test to itself.
	for line, want := range map[string]bool{
		"GET /a HTTP/1.1\r\n":     true,
		"HEAD /a HTTP/1.1\r\n":    true,
		"OPTIONS * HTTP/1.1\r\n":  true,
		"POST /a HTTP/1.1\r\n":    false,
		"GETX /a HTTP/1.1\r\n":    false,
		"TRACE /a HTTP/1.1\r\n":   false,
		"get /a HTTP/1.1\r\n":     false, // methods are case-sensitive
		"GET":                     false, // no request line yet
		" GET /a HTTP/1.1\r\n":    false,
		"DELETE /a HTTP/1.1\r\n":  false,
		"PATCH /GET HTTP/1.1\r\n": false,
	} {
		if got := safeRequest([]byte(line)); got != want {
			t.Errorf("safeRequest(%q) = %v, want %v", line, got, want)
		}
	}
	line := []byte("OPTIONS * HTTP/1.1\r\n")
	if n := testing.AllocsPerRun(100, func() { safeRequest(line) }); n != 0 {
		t.Errorf("safeRequest allocates %v times per call on the per-request path", n)
	}
}
