//go:build unix

package proxy

import (
	"errors"
	"net"
	"syscall"
)

// peerClosed reports whether the upstream has closed c: a non-blocking
// peek finds its FIN (zero bytes), its reset, or bytes nobody asked for
// (an idle HTTP/1.1 connection carries none; such a connection is not
// worth trusting either). It reports false when it cannot tell.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var perr error
	var buf [1]byte
	if err := rc.Read(func(fd uintptr) bool {
		_, _, perr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for readability
	}); err != nil {
		return false
	}
	switch {
	case errors.Is(perr, syscall.EAGAIN), errors.Is(perr, syscall.EWOULDBLOCK), errors.Is(perr, syscall.EINTR):
		return false // alive and quiet: the normal case
	case perr != nil:
		return true // ECONNRESET and friends
	}
	return true // n == 0: FIN; n > 0: unsolicited bytes
}
