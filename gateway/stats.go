package gateway

import (
	"sync/atomic"
)

// statsWindow is how many one-second buckets RouteStats keeps.
const statsWindow = 60

// BackendStats is one backend's recent traffic on a route, averaged over
// the last minute.
type BackendStats struct {
	// RequestsPerSec is answered requests per second.
	RequestsPerSec float64 `json:"requestsPerSec"`
	// ErrorsPerSec is responses with status >= 500 per second (the
	// gateway's own 502/503/504 included).
	ErrorsPerSec float64 `json:"errorsPerSec"`
}

// ring counts events per second over the last statsWindow seconds. Each
// slot packs the second it belongs to (high 40 bits) and its count (low 24
// bits) in one word, so a slot is reused by a CAS without a lock.
type ring struct{ slots [statsWindow]atomic.Uint64 }

const countBits = 24

func (r *ring) add(sec int64) {
	s := &r.slots[uint64(sec)%statsWindow]
	for {
		v := s.Load()
		var next uint64
		if int64(v>>countBits) == sec {
			if v&(1<<countBits-1) == 1<<countBits-1 {
				return // saturated: 16M events in one second
			}
			next = v + 1
		} else {
			next = uint64(sec)<<countBits | 1
		}
		if s.CompareAndSwap(v, next) {
			return
		}
	}
}

// sum counts the events of the statsWindow seconds up to and including now.
func (r *ring) sum(now int64) uint64 {
	var n uint64
	for i := range r.slots {
		v := r.slots[i].Load()
		if sec := int64(v >> countBits); sec > now-statsWindow && sec <= now {
			n += v & (1<<countBits - 1)
		}
	}
	return n
}

// backendRings is the traffic of one route×backend.
type backendRings struct{ reqs, errs ring }
