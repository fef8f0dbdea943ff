package proxy

import (
	"errors"
	"net"
	"sync/atomic"
)

// A pooled upstream connection can be dead when it is taken from the pool:
// the upstream restarted, or closed it as idle, while it waited. Sending a
// request on it fails, and for a POST that was a 502 UPSTREAM_RESET the
// client saw, although the upstream never saw the request. Replaying a
// request is only safe when the upstream provably did not process it, so
// the gateway retries a failed exchange (once, on a fresh connection,
// whatever the method) only when all of these hold:
//
//  1. the connection was reused: it had carried an earlier exchange;
//  2. no byte of this request reached the upstream, because either
//     a. before the first byte was written, a non-blocking peek found that
//     the upstream had already closed the connection (its FIN or reset
//     was waiting), so nothing was written at all; or
//     b. the very first write of the request failed with zero bytes
//     accepted (the peer's reset arrived first).
//
// Nothing else is retried this way: once a byte of the request is on the
// wire, an upstream that closes without answering may have acted on it
// (it may have crashed after committing), and only the method or an
// idempotency key can make a replay safe (the route's own retries).
// A restart that leaves no FIN behind (the upstream host lost power) is
// therefore still a 502 for a POST; a restarted process closes its
// sockets, and that is the case this handles.
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
	// dead: the upstream closed the connection (ErrStaleConn was returned);
	// every later write fails the same way.
	dead atomic.Bool
}

func newStaleConn(c net.Conn) *staleConn { return &staleConn{Conn: c, fresh: true} }

func (c *staleConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.used = true
		c.fresh = true // the next write is the next request's
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
		if c.used && peerClosed(c.Conn) {
			c.dead.Store(true)
			return 0, ErrStaleConn
		}
	}
	n, err := c.Conn.Write(p)
	c.wrote += n
	if err != nil && c.used && c.wrote == 0 && !isNetTimeout(err) {
		c.dead.Store(true)
		return n, errors.Join(ErrStaleConn, err)
	}
	return n, err
}
