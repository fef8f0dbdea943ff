package shadow

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// maxFieldsPerRoute bounds the distinct field patterns counted per route
// (and so the field label values of ficus_shadow_field_diffs_total); later
// ones are counted as FieldOther.
const maxFieldsPerRoute = 100

// routeStats are one route's counters since start: per result, and per
// field the candidate differences (primary vs shadow) and the noise
// differences (primary vs primary), after Diffy.
type routeStats struct {
	results       [numResults]atomic.Uint64 // lock-free: drops are counted on the primary path
	mu            sync.Mutex
	compared      uint64 // primary vs shadow comparisons
	noiseCompared uint64 // primary vs primary comparisons
	fields        map[string]*fieldStats
}

type fieldStats struct {
	diffs  uint64
	noise  uint64
	metric prometheus.Counter
}

// field returns the counters of pattern f, folding it into FieldOther once
// the route has maxFieldsPerRoute fields. Call with mu held.
func (s *routeStats) field(f string, vec *prometheus.CounterVec, route string) *fieldStats {
	if fs, ok := s.fields[f]; ok {
		return fs
	}
	if len(s.fields) >= maxFieldsPerRoute {
		f = FieldOther
		if fs, ok := s.fields[f]; ok {
			return fs
		}
	}
	fs := &fieldStats{metric: vec.WithLabelValues(route, f)}
	s.fields[f] = fs
	return fs
}

// record counts one comparison: diffs are the candidate's differing field
// patterns, noise the primary-vs-primary ones (nil when noise is off).
func (s *routeStats) record(diffs, noise []string, noiseOn bool, vec *prometheus.CounterVec, route string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.compared++
	for _, f := range diffs {
		fs := s.field(f, vec, route)
		fs.diffs++
		fs.metric.Inc()
	}
	if noiseOn {
		s.noiseCompared++
		for _, f := range noise {
			s.field(f, vec, route).noise++
		}
	}
}

func (s *routeStats) result(r Result) { s.results[r].Add(1) }

// FieldReport is one field's difference and noise rates.
type FieldReport struct {
	// Field is the normalised pattern (see Difference.Field).
	Field string `json:"field"`
	// Diffs is how many comparisons found the field different.
	Diffs uint64 `json:"diffs"`
	// DiffRate is Diffs over the route's comparisons.
	DiffRate float64 `json:"diffRate"`
	// NoiseDiffs is how many primary-vs-primary comparisons found it different.
	NoiseDiffs uint64 `json:"noiseDiffs"`
	// NoiseRate is NoiseDiffs over the primary-vs-primary comparisons (0
	// when noise is off).
	NoiseRate float64 `json:"noiseRate"`
	// Real is true when DiffRate exceeds NoiseRate by both thresholds: a
	// difference to fix (or to ignore with an owned, expiring rule), not
	// noise.
	Real bool `json:"real"`
}

// isReal applies Diffy's rule: the candidate's difference rate must exceed the
// noise rate by the absolute threshold and by the relative threshold (a
// fraction of the noise rate).
func isReal(diffRate, noiseRate, rel, abs float64) bool {
	return diffRate-noiseRate > abs && diffRate > noiseRate*(1+rel)
}

// snapshot returns the counters and the top n fields, the real ones first,
// then by difference rate.
func (s *routeStats) snapshot(n int, rel, abs float64) (results [numResults]uint64, compared, noiseCompared uint64, fields []FieldReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range results {
		results[i] = s.results[i].Load()
	}
	compared, noiseCompared = s.compared, s.noiseCompared
	for f, fs := range s.fields {
		if fs.diffs == 0 && fs.noise == 0 {
			continue
		}
		fr := FieldReport{Field: f, Diffs: fs.diffs, NoiseDiffs: fs.noise}
		if compared > 0 {
			fr.DiffRate = float64(fs.diffs) / float64(compared)
		}
		if noiseCompared > 0 {
			fr.NoiseRate = float64(fs.noise) / float64(noiseCompared)
		}
		fr.Real = isReal(fr.DiffRate, fr.NoiseRate, rel, abs)
		fields = append(fields, fr)
	}
	sort.Slice(fields, func(i, j int) bool {
		a, b := fields[i], fields[j]
		if a.Real != b.Real {
			return a.Real
		}
		if a.DiffRate != b.DiffRate {
			return a.DiffRate > b.DiffRate
		}
		return a.Field < b.Field
	})
	if len(fields) > n {
		fields = fields[:n]
	}
	return
}
