package decide

import (
	"bytes"
	"encoding/base64"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
)

// maxJWTPayload caps the decoded JWT payload read for its "sub" claim, in
// bytes. A larger token yields no user key (the request is then bucketed by
// its request id): bucketing must not cost more than a small stack buffer.
const maxJWTPayload = 2048

var keyAuthorization = []byte(fiber.HeaderAuthorization)

// userKey returns the request's sticky user key from the configured header
// or cookie, first hit wins. When neither is present and JWT subjects are
// enabled it returns the bearer token instead, for the caller to decode into
// a buffer it owns. Both slices alias the request and are valid only during
// the handler.
func (e *Engine) userKey(c *fiber.Ctx) (key, bearer []byte) {
	h := &c.Request().Header
	if len(e.userHeader) > 0 {
		if v := h.PeekCanonical(e.userHeader); len(v) > 0 {
			return v, nil
		}
	}
	if e.userCookie != "" {
		if v := h.Cookie(e.userCookie); len(v) > 0 {
			return v, nil
		}
	}
	if e.userJWTSub {
		auth := h.PeekCanonical(keyAuthorization)
		if len(auth) > 7 && bytes.EqualFold(auth[:7], []byte("Bearer ")) {
			return nil, bytes.TrimSpace(auth[7:])
		}
	}
	return nil, nil
}

// jwtSubject returns the "sub" claim of a compact JWT without verifying it:
// it only buckets users, it never authorises them. The payload is decoded
// into buf; the result aliases buf. Anything malformed yields nil.
func jwtSubject(token, buf []byte) []byte {
	first := bytes.IndexByte(token, '.')
	if first < 0 {
		return nil
	}
	rest := token[first+1:]
	second := bytes.IndexByte(rest, '.')
	if second < 0 {
		return nil
	}
	payload := rest[:second]
	// Some issuers pad; RawURLEncoding rejects padding.
	for len(payload) > 0 && payload[len(payload)-1] == '=' {
		payload = payload[:len(payload)-1]
	}
	if base64.RawURLEncoding.DecodedLen(len(payload)) > len(buf) {
		return nil
	}
	n, err := base64.RawURLEncoding.Decode(buf, payload)
	if err != nil {
		return nil
	}
	raw := topLevelString(buf[:n], "sub")
	if raw == nil {
		return nil
	}
	// The subject is bucketed by its decoded value, not its spelling (see
	// decodeString); the payload is spent, so buf takes the result.
	var out [maxSubject]byte
	sub, ok := decodeString(out[:0], raw)
	if !ok {
		return nil
	}
	return buf[:copy(buf, sub)]
}

// maxSubject caps a decoded "sub" claim, in bytes; a longer one yields no
// user key. The cap applies to the decoded value, so every spelling of one
// subject is treated alike.
const maxSubject = 512

// decodeString appends to dst the value of the JSON string whose content
// (between the quotes) is raw, exactly as encoding/json decodes it: escapes
// resolved (\u surrogate pairs joined, a lone surrogate becoming U+FFFD)
// and every byte that is not valid UTF-8 replaced by U+FFFD. Bucketing on
// this value puts a token and its decoded twin, e.g. a "sub" holding a
// stray 0xCA byte and one holding "\ufffd" or the literal U+FFFD, on the
// same side; bucketing the raw bytes did not (issue 15). It reports false
// when the result would exceed cap(dst) or raw is not a valid string
// content. It does not allocate when dst has the capacity.
func decodeString(dst, raw []byte) ([]byte, bool) {
	limit := cap(dst)
	put := func(r rune) bool {
		if len(dst)+utf8.RuneLen(r) > limit && utf8.RuneLen(r) > 0 {
			return false
		}
		dst = utf8.AppendRune(dst, r)
		return true
	}
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			if i+1 >= len(raw) {
				return nil, false
			}
			i += 2
			var r rune
			switch raw[i-1] {
			case '"', '\\', '/':
				r = rune(raw[i-1])
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'n':
				r = '\n'
			case 'r':
				r = '\r'
			case 't':
				r = '\t'
			case 'u':
				u, ok := hex4(raw[i:])
				if !ok {
					return nil, false
				}
				i += 4
				r = u
				if utf16.IsSurrogate(u) {
					r = utf8.RuneError
					if u2, ok := hex4(tail(raw, i+2)); ok && i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if p := utf16.DecodeRune(u, u2); p != utf8.RuneError {
							r = p
							i += 6
						}
					}
				}
			default:
				return nil, false
			}
			if !put(r) {
				return nil, false
			}
		case c < utf8.RuneSelf:
			if len(dst) >= limit {
				return nil, false
			}
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			i += size // an invalid byte decodes as (RuneError, 1)
			if !put(r) {
				return nil, false
			}
		}
	}
	return dst, true
}

func tail(b []byte, i int) []byte {
	if i > len(b) {
		return nil
	}
	return b[i:]
}

// hex4 reads four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// topLevelString scans a JSON object for a top-level member named key whose
// value is a string and returns the string's raw (still escaped) bytes
// (decodeString gives its value). It allocates nothing.
func topLevelString(doc []byte, key string) []byte {
	s := jsonScanner{b: doc}
	s.ws()
	if !s.eat('{') {
		return nil
	}
	s.ws()
	if s.eat('}') {
		return nil
	}
	for {
		s.ws()
		name, ok := s.str()
		if !ok {
			return nil
		}
		s.ws()
		if !s.eat(':') {
			return nil
		}
		s.ws()
		if string(name) == key && s.peek() == '"' {
			v, ok := s.str()
			if !ok {
				return nil
			}
			return v
		}
		if !s.skipValue(0) {
			return nil
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		return nil // '}' without the key, or garbage
	}
}

// maxJSONDepth bounds nesting while skipping values, so a hostile token
// cannot recurse deeply.
const maxJSONDepth = 32

type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jsonScanner) eat(c byte) bool {
	if s.peek() == c && s.i < len(s.b) {
		s.i++
		return true
	}
	return false
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// str reads a string and returns its content between the quotes.
func (s *jsonScanner) str() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
		case '"':
			v := s.b[start:s.i]
			s.i++
			return v, true
		default:
			s.i++
		}
	}
	return nil, false
}

func (s *jsonScanner) skipValue(depth int) bool {
	if depth > maxJSONDepth {
		return false
	}
	switch s.peek() {
	case '"':
		_, ok := s.str()
		return ok
	case '{', '[':
		closer := byte('}')
		if s.b[s.i] == '[' {
			closer = ']'
		}
		s.i++
		s.ws()
		if s.eat(closer) {
			return true
		}
		for {
			s.ws()
			if closer == '}' {
				if _, ok := s.str(); !ok {
					return false
				}
				s.ws()
				if !s.eat(':') {
					return false
				}
				s.ws()
			}
			if !s.skipValue(depth + 1) {
				return false
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			return s.eat(closer)
		}
	case 0:
		return false
	default: // number, true, false, null: up to the next delimiter
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.i > start
			}
			s.i++
		}
		return s.i > start
	}
}
