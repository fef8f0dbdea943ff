package proxy

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func tcpPair(t *testing.T) (client, server net.Conn) {
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
		c := newStaleConn(raw)
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
	t.Run("first use is never judged stale", func(t *testing.T) {
		t.Parallel()
		raw, srv := tcpPair(t)
		srv.Close()
		waitPeerClosed(t, raw)
		c := newStaleConn(raw)
		if _, err := c.Write([]byte("POST / HTTP/1.1\r\n\r\n")); errors.Is(err, ErrStaleConn) {
			t.Fatal("a connection that carried nothing yet is fresh by definition: its failure is an ordinary one")
		}
	})
	t.Run("bytes on the wire: no longer stale", func(t *testing.T) {
		t.Parallel()
		raw, srv := tcpPair(t)
		c := newStaleConn(raw)
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
