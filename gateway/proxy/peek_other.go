//go:build !unix

package proxy

import "net"

// peerClosed cannot peek on this platform: it reports false, and only a
// failed first write counts as a stale connection.
func peerClosed(net.Conn) bool { return false }
