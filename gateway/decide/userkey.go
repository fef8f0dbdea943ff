package decide

import (
	"bytes"
	"encoding/base64"

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
	return topLevelString(buf[:n], "sub")
}

// topLevelString scans a JSON object for a top-level member named key whose
// value is a string and returns the string's raw (still escaped) bytes. It
// allocates nothing. Raw bytes are fine for bucketing: the same subject
// always has the same encoding within one issuer.
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
