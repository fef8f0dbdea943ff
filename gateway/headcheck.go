package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ficus-gw/ficus/apierr"
)

// headListener wraps the public listener so that a request head using bare
// LF line ends is refused at once. fasthttp waits for the CRLFCRLF that
// ends a head; a head terminated by LF LF never has one, so the connection
// was held until limits.readTimeout (30 s) and answered 408. Servers read
// bare LF differently (nginx accepts it, others split lines on CR), which
// makes it a smuggling ingredient between hops: RFC 9112 §2.2 lets a
// recipient reject it, and the gateway does.
type headListener struct {
	net.Listener
	g *Gateway
}

func (l headListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if _, isTLS := c.(*tls.Conn); isTLS {
		return c, nil // fasthttp must see the TLS connection itself
	}
	hc := &headConn{Conn: c, g: l.g}
	hc.inHead.Store(true)
	return hc, nil
}

// headConn scans the bytes of each request head as they are read, up to
// the CRLFCRLF that ends it. A head begins where the connection begins and
// after each response the gateway writes (HTTP/1.1 without pipelining; a
// pipelined head read together with the previous body is not scanned and
// falls back to fasthttp's own handling). An interim "100 Continue" does
// not start a head: the body follows it.
type headConn struct {
	net.Conn
	g      *Gateway
	inHead atomic.Bool
	// prev holds the last three bytes of the head read so far, so that a
	// line end or the CRLFCRLF split across two reads is still seen.
	prev    [3]byte
	refused bool
	// linger: the gateway refused a request whose body the client may
	// still be sending; Close lingers (see Close).
	linger atomic.Bool
}

// Lingering close bounds: how long a refused client may go on sending, and
// how many connections may linger at once (beyond that they close at once).
const (
	lingerTime = 3 * time.Second
	maxLinger  = 256
)

var lingering = make(chan struct{}, maxLinger)

// lingerAfterRefusal marks conn (when it is the gateway's own) to linger
// when it closes.
func lingerAfterRefusal(conn net.Conn) {
	if hc, ok := conn.(*headConn); ok {
		hc.linger.Store(true)
	}
}

// Close closes the connection. After a refused body it lingers first, as
// nginx's lingering_close and net/http do: closing a socket with unread
// data makes the kernel send a reset, and a reset can destroy the refusal
// the client has not read yet. So the write side is shut (the client sees
// the end of the answer), and what the client still sends is read and
// discarded for at most lingerTime, in the background.
func (c *headConn) Close() error {
	if !c.linger.Load() {
		return c.Conn.Close()
	}
	tc, ok := c.Conn.(*net.TCPConn)
	if !ok {
		return c.Conn.Close()
	}
	select {
	case lingering <- struct{}{}:
	default:
		return c.Conn.Close() // too many lingering already
	}
	_ = tc.CloseWrite()
	_ = tc.SetReadDeadline(time.Now().Add(lingerTime))
	go func() {
		defer func() { <-lingering }()
		_, _ = io.Copy(io.Discard, tc)
		_ = tc.Close()
	}()
	return nil
}

var errBareLF = errors.New("request head uses bare LF line ends")

func (c *headConn) Read(p []byte) (int, error) {
	if c.refused {
		return 0, errBareLF
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.inHead.Load() {
		switch c.scan(p[:n]) {
		case headBad:
			c.refuse()
			return 0, errBareLF
		case headDone:
			c.inHead.Store(false)
		}
	}
	return n, err
}

func (c *headConn) Write(p []byte) (int, error) {
	if !c.inHead.Load() && !bytes.HasPrefix(p, interim100) {
		c.inHead.Store(true)
		c.prev = [3]byte{}
	}
	return c.Conn.Write(p)
}

// ReadFrom keeps the TCP connection's own ReadFrom reachable: a streamed
// response body is copied through it as it arrives, where a plain Write
// path would hold the last partial buffer back until more came.
func (c *headConn) ReadFrom(r io.Reader) (int64, error) {
	if !c.inHead.Load() {
		c.inHead.Store(true) // only response bodies are written this way
		c.prev = [3]byte{}
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

// writerOnly hides a writer's ReadFrom from io.Copy.
type writerOnly struct{ io.Writer }

var interim100 = []byte("HTTP/1.1 100 ")

const (
	headMore = iota // the head goes on in the next read
	headDone        // CRLFCRLF seen: the rest is body
	headBad         // a bare LF
)

// scan looks at every LF of b: each must follow a CR, and the first one
// that ends an empty line ends the head.
func (c *headConn) scan(b []byte) int {
	at := func(i int) byte { // b[i], or for i < 0 the bytes read before b
		if i >= 0 {
			return b[i]
		}
		if j := len(c.prev) + i; j >= 0 {
			return c.prev[j]
		}
		return 0
	}
	for off := 0; ; {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			break
		}
		i += off
		if at(i-1) != '\r' {
			return headBad
		}
		if at(i-2) == '\n' && at(i-3) == '\r' {
			return headDone
		}
		off = i + 1
	}
	// Keep the last three bytes for the next read.
	var tail [3]byte
	for k := range tail {
		tail[k] = at(len(b) - len(tail) + k)
	}
	c.prev = tail
	return headMore
}

// refuse answers the structured 400 itself (no handler runs for a head
// fasthttp cannot parse) and closes the connection.
func (c *headConn) refuse() {
	c.refused = true
	var buf [requestIDMax]byte
	id := string(c.g.ids.fresh(buf[:0]))
	body, _ := json.Marshal(apierr.Body{Code: CodeBadRequest, Message: errBareLFResp.Message, RequestID: id})
	var w bytes.Buffer
	w.WriteString("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\nConnection: close\r\n")
	w.WriteString(apierr.RequestIDHeader + ": " + id + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	w.Write(body)
	_, _ = c.Conn.Write(w.Bytes())
	_ = c.Conn.Close()
	if c.g.log.Enabled(context.Background(), slog.LevelDebug) {
		c.g.log.Debug("request refused", "request_id", id, "code", CodeBadRequest, "err", errBareLF, "peer", c.RemoteAddr().String())
	}
}
