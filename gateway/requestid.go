package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"

	"github.com/gofiber/fiber/v2"
)

// requestIDMax is the longest request id kept (apierr.ValidRequestID).
const requestIDMax = 128

// idSource makes request ids: a random per-process prefix and a counter,
// unique across restarts and replicas without a UUID's cost per request.
type idSource struct {
	prefix [12]byte
	n      atomic.Uint64
}

func newIDSource() (*idSource, error) {
	var raw [6]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	s := &idSource{}
	hex.Encode(s.prefix[:], raw[:])
	return s, nil
}

// requestID appends to dst the request's id: the inbound X-Request-Id when
// it came from a trusted proxy (which made it, or vetted it) and is valid
// (1-128 of [A-Za-z0-9._-]), otherwise a fresh one. Anyone else's id is
// replaced: a client choosing the id that logs, the audit trail and the
// upstreams key on could collide with or impersonate another request.
func (s *idSource) requestID(c *fiber.Ctx, dst []byte, trusted bool) []byte {
	if in := c.Request().Header.PeekCanonical(keyRequestID); trusted && validID(in) {
		return append(dst, in...)
	}
	return s.fresh(dst)
}

// fresh appends a new id to dst.
func (s *idSource) fresh(dst []byte) []byte {
	dst = append(dst, s.prefix[:]...)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, s.n.Add(1), 36)
}

func validID(id []byte) bool {
	if len(id) == 0 || len(id) > requestIDMax {
		return false
	}
	for _, b := range id {
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.') {
			return false
		}
	}
	return true
}
