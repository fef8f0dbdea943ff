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

// connTokens appends to buf the field names listed in one Connection header
// value and to toks their slices of buf. "close" and "keep-alive" are
// skipped: they name no field to strip. There is no cap on the number of
// names: a list is bounded by limits.maxHeaderBytes, and every name listed
// is honoured (a capped list let the 17th name through).
func connTokens(v, buf []byte, toks [][2]int) ([]byte, [][2]int) {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		tok := trimOWS(v[:i])
		if len(tok) > 0 && !equalFold(tok, "close") && !equalFold(tok, "keep-alive") {
			start := len(buf)
			buf = append(buf, tok...)
			toks = append(toks, [2]int{start, len(buf)})
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
	var buf []byte
	var toks [][2]int // offsets into buf: buf may move while it grows
	for k, v := range all {
		if equalFold(k, "Connection") {
			buf, toks = connTokens(v, buf, toks)
		}
	}
	for _, t := range toks {
		del(buf[t[0]:t[1]])
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

// Screen is what ScreenRequestHeaders found in a request's raw header
// block: each bit is a reason to refuse the request or to clean it.
type Screen uint8

// Screen bits.
const (
	// ScreenAmbiguousFraming: both Transfer-Encoding and Content-Length
	// were sent. fasthttp parses such a request as chunked, and after an
	// empty chunked body it even reports Content-Length 0, so the check
	// reads the raw lines. It is the classic smuggling probe: a proxy that
	// forwarded it would hand the upstream a message whose framing another
	// hop may read differently (RFC 9112 §6.3), so it is refused.
	ScreenAmbiguousFraming Screen = 1 << iota
	// ScreenBadName: a field name that is not an RFC 9110 token (a space
	// in "X Foo", a space before the colon), or an obsolete folded line
	// (RFC 9112 §5.2: a proxy must reject it or replace it). Servers
	// disagree on what such a line means, so it is refused.
	ScreenBadName
	// ScreenForwarding: a field only a trusted proxy may set (X-Real-IP,
	// X-Original-URL, X-Forwarded-*...), in its usual spelling.
	ScreenForwarding
	// ScreenUnderscore: an underscore spelling of such a field
	// (X_Forwarded_For). CGI-style stacks fold '-' and '_' into the same
	// variable, so it would pass as the real one behind the gateway.
	ScreenUnderscore
)

// ScreenRequestHeaders reads the raw header block of a request (fasthttp's
// RequestHeader.RawHeaders: the lines after the request line, as received)
// once. It does not allocate.
func ScreenRequestHeaders(raw []byte) Screen {
	var s Screen
	var cl, te bool
	for len(raw) > 0 {
		i := 0
		for i < len(raw) && raw[i] != '\n' {
			i++
		}
		line := raw[:i]
		if i < len(raw) {
			raw = raw[i+1:]
		} else {
			raw = nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			s |= ScreenBadName // obs-fold
			continue
		}
		colon := 0
		for colon < len(line) && line[colon] != ':' {
			if !isTokenChar(line[colon]) {
				s |= ScreenBadName
			}
			colon++
		}
		name := line[:colon]
		if colon == len(line) || colon == 0 {
			s |= ScreenBadName
			continue
		}
		switch len(name) {
		case 14:
			cl = cl || equalFold(name, "Content-Length")
		case 17:
			te = te || equalFold(name, "Transfer-Encoding")
		}
		if u, ok := forwardingName(name); ok {
			if u {
				s |= ScreenUnderscore
			} else {
				s |= ScreenForwarding
			}
		}
	}
	if cl && te {
		s |= ScreenAmbiguousFraming
	}
	return s
}

// forwardingName reports whether name, read case-insensitively with '_'
// taken as '-', is a field that carries a client's address or a URL
// override that only a trusted proxy may set, and whether it was spelt
// with an underscore.
func forwardingName(name []byte) (underscore, ok bool) {
	if len(name) < 9 || len(name) > 24 {
		return false, false
	}
	switch name[0] {
	case 'x', 'X', 'f', 'F', 't', 'T':
	default:
		return false, false
	}
	var buf [24]byte
	for i, c := range name {
		switch {
		case c == '_':
			c = '-'
			underscore = true
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(name)]) {
	case "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port",
		"x-forwarded-prefix", "x-forwarded-server", "x-forwarded-ssl", "x-forwarded-scheme",
		"x-real-ip", "x-client-ip", "true-client-ip", "x-cluster-client-ip",
		"x-original-url", "x-rewrite-url", "x-original-uri", "x-request-id":
		// X-Request-Id in its hyphen form is the gateway's own business
		// (see the gateway's request ids); only its underscore twin is
		// stripped here.
		if !underscore && string(buf[:len(name)]) == "x-request-id" {
			return false, false
		}
		return underscore, true
	}
	return false, false
}

// StripForwarding removes the fields ScreenRequestHeaders flagged: every
// underscore spelling, and from an untrusted peer the usual spellings too
// (SetForwarded then writes X-Forwarded-For/-Proto/-Host afresh). It is
// the rare path, taken only when the screen found one.
//
//go:noinline
func StripForwarding(h *fasthttp.RequestHeader, trusted bool) {
	var names [][]byte
	for k := range h.All() {
		if u, ok := forwardingName(k); ok && (u || !trusted) {
			names = append(names, append([]byte(nil), k...))
		}
	}
	for _, k := range names {
		h.DelBytes(k)
	}
}

// isTokenChar is RFC 9110 §5.6.2 tchar.
func isTokenChar(c byte) bool {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
