package proxy

import (
	"net/netip"

	"github.com/valyala/fasthttp"
)

// hopByHop are the connection-specific fields of RFC 9110 §7.6.1 plus the
// obsolete Proxy-Connection and Keep-Alive that old clients still send. A
// proxy must not forward them; TE and Upgrade in particular would let a
// client negotiate trailers or a protocol switch with the upstream behind
// the gateway's back.
var hopByHop = [...]string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
}

// maxConnTokens bounds how many Connection-listed fields are honoured; the
// rest of an absurdly long list is ignored (the fixed list is still removed).
const maxConnTokens = 16

// connTokens copies the field names listed in one Connection header value
// into buf and returns them as slices of buf. "close" and "keep-alive" are
// skipped: they name no field to strip.
func connTokens(v, buf []byte, toks [][]byte) ([]byte, [][]byte) {
	for len(v) > 0 && len(toks) < maxConnTokens {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		tok := trimOWS(v[:i])
		if len(tok) > 0 && !equalFold(tok, "close") && !equalFold(tok, "keep-alive") && len(buf)+len(tok) <= cap(buf) {
			start := len(buf)
			buf = append(buf, tok...)
			toks = append(toks, buf[start:len(buf):len(buf)])
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return buf, toks
}

// hopIndex returns the index in hopByHop of field name k, or -1. It
// dispatches on length first, so the common header (none of these) costs a
// switch and no comparison.
func hopIndex(k []byte) int {
	switch len(k) {
	case 2:
		if equalFold(k, "TE") {
			return 5
		}
	case 7:
		if equalFold(k, "Trailer") {
			return 6
		}
		if equalFold(k, "Upgrade") {
			return 8
		}
	case 10:
		if equalFold(k, "Connection") {
			return 0
		}
		if equalFold(k, "Keep-Alive") {
			return 1
		}
	case 16:
		if equalFold(k, "Proxy-Connection") {
			return 2
		}
	case 17:
		if equalFold(k, "Transfer-Encoding") {
			return 7
		}
	case 18:
		if equalFold(k, "Proxy-Authenticate") {
			return 3
		}
	case 19:
		if equalFold(k, "Proxy-Authorization") {
			return 4
		}
	}
	return -1
}

// expectBit marks Expect in the set scanHopByHop returns.
const expectBit = 1 << len(hopByHop)

// scanHopByHop visits every field once and returns which hop-by-hop fields
// are present (bit i for hopByHop[i], expectBit for Expect) and whether a
// Connection value names further fields. Deleting only what is present
// saves a scan of the whole header per absent name: most requests carry
// none of them.
func scanHopByHop(all func(yield func(k, v []byte) bool)) (present uint16, listed bool) {
	for k, v := range all {
		if i := hopIndex(k); i >= 0 {
			present |= 1 << i
			if i == 0 && !listed && namesFields(v) {
				listed = true
			}
		} else if len(k) == 6 && equalFold(k, "Expect") {
			present |= expectBit
		}
	}
	return present, listed
}

// StripRequestHopByHop removes the hop-by-hop fields of a request that is
// about to be forwarded, including every field named in Connection. Expect
// goes too: the gateway has already answered "100-continue" and holds the
// whole body.
func StripRequestHopByHop(h *fasthttp.RequestHeader) {
	present, listed := scanHopByHop(h.All())
	if listed {
		stripListed(h.All(), h.DelBytes)
	}
	for i, k := range hopByHop {
		if present&(1<<i) != 0 {
			h.Del(k)
		}
	}
	if present&expectBit != 0 {
		h.Del("Expect")
	}
}

// StripResponseHopByHop removes the hop-by-hop fields of an upstream
// response before it is relayed. The server writes its own framing
// (Content-Length or chunked) and connection management.
func StripResponseHopByHop(h *fasthttp.ResponseHeader) {
	present, listed := scanHopByHop(h.All())
	if listed {
		stripListed(h.All(), h.DelBytes)
	}
	for i, k := range hopByHop {
		if present&(1<<i) != 0 && k != "Transfer-Encoding" { // fasthttp writes its own framing
			h.Del(k)
		}
	}
}

// namesFields reports whether a Connection value lists anything besides
// "close" and "keep-alive", i.e. whether stripListed has work to do.
func namesFields(v []byte) bool {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		if tok := trimOWS(v[:i]); len(tok) > 0 && !equalFold(tok, "close") && !equalFold(tok, "keep-alive") {
			return true
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return false
}

// stripListed deletes every field named in any Connection value. It is the
// rare path (its buffers reach the heap), taken only when namesFields says so.
//
//go:noinline
func stripListed(all func(yield func(k, v []byte) bool), del func([]byte)) {
	buf := make([]byte, 0, 512)
	toks := make([][]byte, 0, maxConnTokens)
	for k, v := range all {
		if equalFold(k, "Connection") {
			buf, toks = connTokens(v, buf, toks)
		}
	}
	for _, t := range toks {
		del(t)
	}
}

// Forwarded describes the hop the gateway adds to X-Forwarded-*.
type Forwarded struct {
	// Peer is the address of the directly connected client.
	Peer netip.Addr
	// Trusted says Peer is a configured trusted proxy: its X-Forwarded-*
	// values are kept (the peer appended to X-Forwarded-For).
	Trusted bool
	// Proto is "http" or "https" as seen by the gateway.
	Proto string
}

// SetForwarded rewrites X-Forwarded-For/-Proto/-Host. From an untrusted
// peer every client-supplied value (and RFC 7239 Forwarded) is discarded,
// so a client cannot forge its address. host is the Host the client asked
// for; call it before the Host header is rewritten for the upstream.
func SetForwarded(h *fasthttp.RequestHeader, f Forwarded, host []byte) {
	var buf [256]byte
	if f.Trusted {
		if prev := h.PeekCanonical(keyXFF); len(prev) > 0 && len(prev) < len(buf)-64 {
			b := append(buf[:0], prev...)
			b = append(b, ", "...)
			b = f.Peer.AppendTo(b)
			h.SetCanonical(keyXFF, b)
		} else {
			h.SetCanonical(keyXFF, f.Peer.AppendTo(buf[:0]))
		}
		if len(h.PeekCanonical(keyXFP)) == 0 {
			h.SetCanonical(keyXFP, protoBytes(f.Proto))
		}
		if len(h.PeekCanonical(keyXFH)) == 0 {
			h.SetCanonical(keyXFH, host)
		}
		return
	}
	if len(h.PeekCanonical(keyForwarded)) > 0 { // deleting costs a normalisation and a scan
		h.DelBytes(keyForwarded)
	}
	// SetCanonical: the names are constants in canonical form, so fasthttp
	// need not normalise them on every request.
	h.SetCanonical(keyXFF, f.Peer.AppendTo(buf[:0]))
	h.SetCanonical(keyXFP, protoBytes(f.Proto))
	h.SetCanonical(keyXFH, host)
}

var (
	keyXFF       = []byte("X-Forwarded-For")
	keyXFP       = []byte("X-Forwarded-Proto")
	keyXFH       = []byte("X-Forwarded-Host")
	keyForwarded = []byte("Forwarded")
	protoHTTP    = []byte("http")
	protoHTTPS   = []byte("https")
)

// protoBytes returns the scheme as bytes without allocating for the two
// schemes there are.
func protoBytes(p string) []byte {
	switch p {
	case "https":
		return protoHTTPS
	case "http":
		return protoHTTP
	}
	return []byte(p)
}

// Trust holds the trusted proxy networks.
type Trust []netip.Prefix

// Contains reports whether a is inside a trusted network.
func (t Trust) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// AmbiguousFraming reports a request that carried both Transfer-Encoding
// and Content-Length. fasthttp parses it as chunked and closes the
// connection afterwards (RFC 9112 §6.3), but such a request is the classic
// smuggling probe: a proxy that forwarded it would hand the upstream a
// message whose framing another hop may read differently, so the gateway
// refuses it outright.
func AmbiguousFraming(h *fasthttp.RequestHeader) bool {
	if h.ContentLength() != -1 {
		return false // not chunked: fasthttp already refuses duplicate lengths
	}
	raw := h.RawHeaders()
	for len(raw) > 0 {
		i := 0
		for i < len(raw) && raw[i] != '\n' {
			i++
		}
		line := raw[:i]
		if len(line) >= len("content-length:") && equalFold(line[:len("content-length:")], "content-length:") {
			return true
		}
		if i == len(raw) {
			break
		}
		raw = raw[i+1:]
	}
	return false
}
