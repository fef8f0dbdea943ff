package proxy

import (
	"bytes"
	"errors"
	"net"
	"sync/atomic"
)

// A pooled upstream connection can be dead when it is taken from the pool:
// the upstream restarted, or closed it as idle, while it waited. Sending a
// request on it fails, and for a POST that was a 502 UPSTREAM_RESET the
// client saw, although the upstream never saw the request. Replaying a
// request is only safe when the upstream provably did not process it, or
// when the method makes processing it twice harmless, so the gateway
// retries a failed exchange (once, on a fresh connection) only when the
// connection was reused (it had carried an earlier exchange) and either
//
//  1. the method is unsafe (POST, PUT, PATCH, DELETE, ...) and no byte of
//     this request reached the upstream, because either
//     a. before the first byte was written, a non-blocking peek found that
//     the upstream had already closed the connection (its FIN or reset
//     was waiting), so nothing was written at all; or
//     b. the very first write of the request failed with zero bytes
//     accepted (the peer's reset arrived first); or
//  2. the method is safe (GET, HEAD, OPTIONS) and the connection failed
//     (closed or reset) before the first byte of the answer arrived. A
//     safe request may be repeated (RFC 9110, section 9.2.2), so it goes
//     out without the peek, which costs a system call on every request of
//     the common case, and is re-sent when the connection proves dead, as
//     HTTP clients do with idempotent requests on reused connections.
//
// Nothing else is retried this way: once a byte of an unsafe request is on
// the wire, an upstream that closes without answering may have acted on it
// (it may have crashed after committing), and only an idempotency key can
// make a replay safe (the route's own retries). A restart that leaves no
// FIN behind (the upstream host lost power) is therefore still a 502 for a
// POST; a restarted process closes its sockets, and that is the case this
// handles.
//
// ErrStaleConn is the error of such an attempt; Do retries it.
var ErrStaleConn = errors.New("pooled connection was closed by the upstream before the request was sent")

// staleConn is an upstream connection that knows whether it is being
// reused and refuses to write on one the upstream has already closed.
type staleConn struct {
	net.Conn
	// used: a response byte has been read on this connection.
	used bool
	// fresh: the next Write starts a new request.
	fresh bool
	// wrote counts the bytes of the current request accepted so far.
	wrote int
	// unprobed: the current request is a safe one sent on a reused
	// connection without the peek; until the first byte of its answer
	// arrives, a closed or reset connection makes it stale (rule 2).
	unprobed bool
	// dead: the upstream closed the connection (ErrStaleConn was returned);
	// every later write fails the same way.
	dead atomic.Bool
	// lost counts, for the upstream, safe requests whose connection died
	// before their answer began. fasthttp reports a connection that fails
	// before the answer's first byte as io.EOF, whatever the cause, so Do
	// learns of rule 2 from this counter rather than from the error.
	lost *atomic.Uint64
}

func newStaleConn(c net.Conn, lost *atomic.Uint64) *staleConn {
	return &staleConn{Conn: c, fresh: true, lost: lost}
}

func (c *staleConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.used = true
		c.fresh = true // the next write is the next request's
		c.unprobed = false
	} else if err != nil && c.unprobed && !isNetTimeout(err) {
		c.unprobed = false
		c.dead.Store(true)
		if c.lost != nil {
			c.lost.Add(1)
		}
		return n, errors.Join(ErrStaleConn, err)
	}
	return n, err
}

func (c *staleConn) Write(p []byte) (int, error) {
	if c.dead.Load() {
		return 0, ErrStaleConn
	}
	if c.fresh {
		c.fresh = false
		c.wrote = 0
		c.unprobed = false
		if c.used {
			if safeRequest(p) {
				c.unprobed = true
			} else if peerClosed(c.Conn) {
				c.dead.Store(true)
				return 0, ErrStaleConn
			}
		}
	}
	n, err := c.Conn.Write(p)
	c.wrote += n
	if err != nil && c.used && (c.wrote == 0 || c.unprobed) && !isNetTimeout(err) {
		c.dead.Store(true)
		return n, errors.Join(ErrStaleConn, err)
	}
	return n, err
}

// safeRequest reports whether p, the start of a request as written to the
// connection, has a safe method (isSafeMethod).
func safeRequest(p []byte) bool {
	i := bytes.IndexByte(p, ' ')
	return i > 0 && isSafeMethod(p[:i])
}

// isSafeMethod is the one list of the methods rule 2 re-sends: GET, HEAD
// and OPTIONS, safe by RFC 9110, section 9.2.1 (TRACE is too, and is left
// out: a route that allows it does so for diagnosis, which a silent
// second attempt would muddle).
func isSafeMethod(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS":
		return true
	}
	return false
}
