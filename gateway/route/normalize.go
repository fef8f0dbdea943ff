// Package route compiles the configured routes into a table that maps a
// normalised request path to a route index without allocating, and owns the
// path normalisation that must run before any routing decision.
//
// Normalisation is deliberately stricter than fasthttp's own: fasthttp
// decodes every percent-escape (so "%2F" becomes a separator and "%3F" a
// literal '?') and then re-quotes the path when the client writes it. The
// gateway instead turns fasthttp's normalisation off on both sides and
// forwards exactly the bytes it routed on, so an upstream can never be asked
// for a path the route table did not see.
package route

import (
	"errors"
)

// Errors returned by Normalize. Each one means the request is refused with
// 400 before it reaches any upstream.
var (
	// ErrNotAbsolute: the path does not start with '/' (e.g. "*" or empty).
	ErrNotAbsolute = errors.New("path must start with /")
	// ErrEncodedSeparator: the path contains %2F or %5C. Decoding them would
	// let an escaped separator re-form "..", keeping them would let the
	// upstream decode them differently than the gateway routed, so they are
	// refused.
	ErrEncodedSeparator = errors.New("path contains an encoded slash or backslash")
	// ErrBadEscape: a '%' not followed by two hex digits.
	ErrBadEscape = errors.New("path contains a malformed percent-escape")
	// ErrControl: a raw or escaped control character (NUL, CR, LF...).
	ErrControl = errors.New("path contains a control character")
	// ErrDotParam: a "." or ".." segment carrying a ";parameter", which
	// servlet containers treat as a dot segment ("/..;/admin").
	ErrDotParam = errors.New("path contains a dot segment with a parameter")
)

const upperHex = "0123456789ABCDEF"

// Normalize appends the canonical form of the raw request path src (no
// query) to dst[:0] and returns it. The canonical form:
//   - starts with '/', never contains "//", "." or ".." segments (dot
//     segments are resolved per RFC 3986 §5.2.4, clamped at the root);
//   - treats a raw backslash as '/';
//   - decodes escapes of unreserved characters (so %2e is a dot and takes
//     part in dot-segment removal) and upper-cases every other escape;
//   - percent-encodes raw bytes that are not allowed in a path segment;
//   - keeps one trailing slash when the input had one (or ended in a dot
//     segment), because "/x/" and "/x" may be different resources.
//
// Normalize is idempotent and does not allocate when dst has capacity for
// the result (at most three times len(src)).
func Normalize(dst, src []byte) ([]byte, error) {
	if len(src) == 0 || !isSep(src[0]) {
		return dst[:0], ErrNotAbsolute
	}
	out := append(dst[:0], '/')
	endSlash := false
	n := len(src)
	for i := 0; i < n; {
		if isSep(src[i]) {
			i++
			endSlash = true
			continue
		}
		base := len(out)
		if base > 1 {
			out = append(out, '/')
		}
		start := len(out)
		for i < n && !isSep(src[i]) {
			c := src[i]
			if c == '%' {
				if i+2 >= n || !isHex(src[i+1]) || !isHex(src[i+2]) {
					return out[:0], ErrBadEscape
				}
				v := unhex(src[i+1])<<4 | unhex(src[i+2])
				switch {
				case v == '/' || v == '\\':
					return out[:0], ErrEncodedSeparator
				case v < 0x20 || v == 0x7f:
					return out[:0], ErrControl
				case isUnreserved(v):
					out = append(out, v)
				default:
					out = append(out, '%', upperHex[v>>4], upperHex[v&0xf])
				}
				i += 3
				continue
			}
			switch {
			case c < 0x20 || c == 0x7f:
				return out[:0], ErrControl
			case isPathChar(c):
				out = append(out, c)
			default:
				out = append(out, '%', upperHex[c>>4], upperHex[c&0xf])
			}
			i++
		}
		seg := out[start:]
		switch dotSegment(seg) {
		case 1:
			out = out[:base]
			endSlash = true
		case 2:
			out = out[:base]
			j := lastSlash(out)
			if j <= 0 {
				out = out[:1]
			} else {
				out = out[:j]
			}
			endSlash = true
		case -1:
			return out[:0], ErrDotParam
		default:
			endSlash = false
		}
	}
	if endSlash && len(out) > 1 {
		out = append(out, '/')
	}
	return out, nil
}

// dotSegment reports 1 for ".", 2 for "..", -1 for "." or ".." followed by
// a ";parameter", 0 otherwise.
func dotSegment(seg []byte) int {
	name := seg
	param := false
	for k, c := range seg {
		if c == ';' {
			name = seg[:k]
			param = true
			break
		}
	}
	d := 0
	switch {
	case len(name) == 1 && name[0] == '.':
		d = 1
	case len(name) == 2 && name[0] == '.' && name[1] == '.':
		d = 2
	}
	if d != 0 && param {
		return -1
	}
	return d
}

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return -1
}

func isSep(c byte) bool { return c == '/' || c == '\\' }

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// isUnreserved is RFC 3986 §2.3.
func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isPathChar is RFC 3986 pchar minus '%' (handled by the caller).
func isPathChar(c byte) bool {
	if isUnreserved(c) {
		return true
	}
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}

// MatchKey appends to dst[:0] the path routes are matched on: the
// normalised path p with every segment's ";parameter" removed, the way a
// servlet container maps "/shop/placeOrder.do;jsessionid=1" to the
// resource "/shop/placeOrder.do" (Servlet spec, "path parameters"). A
// segment left empty disappears, a trailing slash stays. The request is
// forwarded with its parameters (p, not the key): the legacy may need them
// (jsessionid), and both sides then agree on the resource. An escaped
// semicolon (%3B) is data, not a parameter, in both places. Normalize has
// already refused "." and ".." segments that carry a parameter ("/..;/"),
// which servlet containers would resolve as dot segments.
//
// MatchKey returns p itself when it has no ';' (the common case: no copy).
func MatchKey(dst, p []byte) []byte {
	semi := false
	for _, c := range p {
		if c == ';' {
			semi = true
			break
		}
	}
	if !semi {
		return p
	}
	out := append(dst[:0], '/')
	for i := 0; i < len(p); {
		if p[i] == '/' {
			i++
			continue
		}
		j := i
		for j < len(p) && p[j] != '/' && p[j] != ';' {
			j++
		}
		seg := p[i:j]
		for j < len(p) && p[j] != '/' {
			j++
		}
		i = j
		if len(seg) == 0 {
			continue
		}
		if len(out) > 1 {
			out = append(out, '/')
		}
		out = append(out, seg...)
	}
	if len(p) > 1 && p[len(p)-1] == '/' && len(out) > 1 {
		out = append(out, '/')
	}
	return out
}
