package decide

import (
	"context"
	"hash/maphash"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/open-feature/go-sdk/openfeature"
)

// flagCacheSlots is the number of cached flag answers (a power of two). A
// slot is 8 bytes, so the cache costs 512 KiB per Engine.
const flagCacheSlots = 1 << 16

// flagCacheWays is how many slots a fingerprint may use. A direct-mapped
// table (one way) thrashes: among 1,000 active users about 15 pairs share a
// slot and evict each other on every request, each miss costing a full
// provider evaluation. Four ways make such conflicts vanishingly rare for
// working sets far below flagCacheSlots, for at most three extra loads of
// the same cache line.
const flagCacheWays = 4

// Cached answers, stored in the low two bits of a slot (0 = empty slot).
const (
	answerLegacy uint8 = 1 + iota
	answerNew
	answerNone  // the flag gave no usable variant: fall through to canary
	answerError // never cached
)

// flagTable is a set-associative cache from an evaluation-context
// fingerprint to an answer. Each slot holds the fingerprint's upper 62 bits
// and the answer in one atomic word, so lookups are lock-free and
// allocation-free, and a torn entry cannot exist. Dropping the cache swaps
// in a fresh table; an evaluation that began before the swap writes into the
// old table, so a stale answer never survives a configuration change.
type flagTable struct {
	slots []atomic.Uint64
	mask  uint64 // selects a set: the index of its first slot
}

func newFlagTable(n int) *flagTable {
	return &flagTable{slots: make([]atomic.Uint64, n), mask: uint64(n-1) &^ (flagCacheWays - 1)}
}

// set returns the flagCacheWays slots fp may occupy (adjacent, so one
// cache line holds them all).
func (t *flagTable) set(fp uint64) []atomic.Uint64 {
	i := fp & t.mask
	return t.slots[i : i+flagCacheWays : i+flagCacheWays]
}

func (t *flagTable) get(fp uint64) (uint8, bool) {
	set := t.set(fp)
	for i := range set {
		if v := set[i].Load(); v != 0 && v&^3 == fp&^3 {
			return uint8(v & 3), true
		}
	}
	return 0, false
}

// put stores answer for fp: over fp's own entry if it has one, else in an
// empty slot, else over the slot chosen by fp's middle bits (a cheap
// pseudo-random victim; concurrent puts may race, and either answer is a
// correct one).
func (t *flagTable) put(fp uint64, answer uint8) {
	set := t.set(fp)
	victim := &set[(fp>>32)&(flagCacheWays-1)]
	for i := range set {
		v := set[i].Load()
		if v&^3 == fp&^3 || v == 0 {
			victim = &set[i]
			break
		}
	}
	victim.Store(fp&^3 | uint64(answer))
}

// fingerprint hashes everything that goes into a route's evaluation
// context. maphash with a per-Engine random seed keeps it fast and
// allocation-free, and makes collisions impossible to aim for from outside.
// Each field is length-prefixed so that field boundaries cannot shift.
func (e *Engine) fingerprint(c *fiber.Ctx, r *route, key []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(e.seed)
	writeField(&h, r.flag)
	writeField(&h, r.name)
	writeField(&h, c.Method())
	writeFieldBytes(&h, key)
	for _, name := range e.ctxHeaders {
		writeFieldBytes(&h, c.Request().Header.PeekCanonical(name))
	}
	return h.Sum64()
}

func writeField(h *maphash.Hash, s string) {
	var n [4]byte
	n[0], n[1], n[2], n[3] = byte(len(s)), byte(len(s)>>8), byte(len(s)>>16), byte(len(s)>>24)
	_, _ = h.Write(n[:])
	_, _ = h.WriteString(s)
}

func writeFieldBytes(h *maphash.Hash, b []byte) {
	var n [4]byte
	n[0], n[1], n[2], n[3] = byte(len(b)), byte(len(b)>>8), byte(len(b)>>16), byte(len(b)>>24)
	_, _ = h.Write(n[:])
	_, _ = h.Write(b)
}

// flagAnswer returns the route flag's answer for this request, from the
// cache when it can.
func (e *Engine) flagAnswer(c *fiber.Ctx, r *route, key []byte, requestID string) uint8 {
	t := e.cache.Load()
	fp := e.fingerprint(c, r, key)
	if a, ok := t.get(fp); ok {
		e.cacheHit.Inc()
		return a
	}
	e.cacheMiss.Inc()
	a := e.evaluate(c, r, key, requestID)
	if a != answerError {
		t.put(fp, a)
	}
	return a
}

// evaluate asks the provider. This is the slow path (tens of µs and
// ~180 allocations with flagd): everything taken from c is copied because
// the context built here outlives nothing but may be kept by hooks.
func (e *Engine) evaluate(c *fiber.Ctx, r *route, key []byte, requestID string) uint8 {
	attrs := make(map[string]any, 2+len(e.ctxHeaders))
	attrs["route"] = r.name
	attrs["method"] = strings.Clone(c.Method())
	for i, name := range e.ctxHeaders {
		if v := c.Request().Header.PeekCanonical(name); len(v) > 0 {
			attrs[e.ctxAttrs[i]] = string(v)
		}
	}
	ec := openfeature.NewEvaluationContext(string(key), attrs)
	d, err := e.client.StringValueDetails(context.Background(), r.flag, "", ec)
	if err != nil {
		r.flagErr.Inc()
		if !e.errLogDue() {
			return answerError
		}
		e.log.Warn("flag evaluation failed; serving the route's default",
			"route", r.name, "flag", r.flag, "code", string(d.ErrorCode), "err", err,
			"request_id", requestID, "counted_in", MetricFlagErrors)
		return answerError
	}
	switch d.Value {
	case "legacy":
		return answerLegacy
	case "new":
		return answerNew
	}
	return answerNone
}

// errLogInterval spaces out flag-error log lines: while a provider is down
// every flagged request fails, and the metric already counts each one.
const errLogInterval = time.Second

// errLogDue reports whether a flag error may be logged now (at most one
// line per errLogInterval per Engine).
func (e *Engine) errLogDue() bool {
	now := time.Now().UnixNano()
	last := e.lastErrLog.Load()
	return now-last >= int64(errLogInterval) && e.lastErrLog.CompareAndSwap(last, now)
}
