package legacy

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

const (
	faultsPath = "/shop/admin/faults"
	// allEndpoints as a fault's endpoint applies it to every shop endpoint
	// that has no fault of its own.
	allEndpoints  = "*"
	maxLatencyMS  = 600_000
	outage503     = "503"
	outageClose   = "close"
	faultBodySize = 4 << 10
)

// Fault is one endpoint's injected misbehaviour, as the admin endpoint
// accepts and lists it. Effects apply in this order: outage (nothing else
// happens), latency, then error rate.
type Fault struct {
	// Endpoint is a shop path such as /shop/catalog.do ("catalog.do" is
	// accepted too), or "*" for every endpoint without its own fault.
	Endpoint string `json:"endpoint"`
	// LatencyMS is added before the request is handled, in milliseconds;
	// 0 means none. The wait ends early when the client goes away.
	LatencyMS int `json:"latency_ms"`
	// ErrorRate is the share of requests, 0 to 1, answered with HTTP 500
	// and the container's HTML error page; 0 means none.
	ErrorRate float64 `json:"error_rate"`
	// Outage makes the endpoint unavailable.
	Outage bool `json:"outage"`
	// OutageMode is "503" (default: HTTP 503 page) or "close" (the
	// connection is closed without a response, like a crashed server).
	OutageMode string `json:"outage_mode,omitempty"`
}

func (f Fault) none() bool { return f.LatencyMS == 0 && f.ErrorRate == 0 && !f.Outage }

// faultTable holds the active faults as an immutable map swapped whole on
// every change, so the request path reads it without locking.
type faultTable struct {
	cur   atomic.Pointer[map[string]Fault]
	known map[string]bool // endpoints faults may name; set once by routes
}

func newFaultTable() *faultTable {
	t := &faultTable{}
	empty := map[string]Fault{}
	t.cur.Store(&empty)
	return t
}

func (t *faultTable) lookup(path string) (Fault, bool) {
	m := *t.cur.Load()
	if f, ok := m[path]; ok {
		return f, true
	}
	f, ok := m[allEndpoints]
	return f, ok
}

// update applies fn to a copy of the table and publishes it. Admin changes
// are rare; a CAS loop keeps concurrent ones from losing each other.
func (t *faultTable) update(fn func(map[string]Fault)) {
	for {
		old := t.cur.Load()
		next := maps.Clone(*old)
		fn(next)
		if t.cur.CompareAndSwap(old, &next) {
			return
		}
	}
}

func (t *faultTable) list() []Fault {
	m := *t.cur.Load()
	out := make([]Fault, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

func (t *faultTable) normalize(endpoint string) (string, error) {
	e := strings.TrimSpace(endpoint)
	if e == allEndpoints {
		return e, nil
	}
	if !strings.HasPrefix(e, "/") {
		e = "/shop/" + e
	}
	if !t.known[e] {
		return "", fmt.Errorf("unknown endpoint %q", endpoint)
	}
	return e, nil
}

// applyFaults injects the fault configured for path, if any. It reports
// whether the request should go on to its handler.
func (s *Shop) applyFaults(w http.ResponseWriter, r *http.Request, path string) bool {
	f, ok := s.faults.lookup(path)
	if !ok {
		return true
	}
	log := s.logger(r.Context())
	if f.Outage {
		log.InfoContext(r.Context(), "injected outage", "path", path, "mode", f.OutageMode)
		s.metrics.fault(faultOutage)
		if f.OutageMode == outageClose {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = conn.Close()
				return false
			}
		}
		w.Header().Set("Retry-After", "30")
		writeErrorPage(w, http.StatusServiceUnavailable, "This application is not currently available")
		return false
	}
	if f.LatencyMS > 0 {
		s.metrics.fault(faultLatency)
		timer := time.NewTimer(time.Duration(f.LatencyMS) * time.Millisecond)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			log.InfoContext(r.Context(), "client gone during injected latency", "path", path, "latency_ms", f.LatencyMS)
			return false
		}
	}
	if f.ErrorRate > 0 && s.cfg.FaultRand() < f.ErrorRate {
		log.InfoContext(r.Context(), "injected error", "path", path, "error_rate", f.ErrorRate)
		s.metrics.fault(faultError)
		writeErrorPage(w, http.StatusInternalServerError, "")
		return false
	}
	return true
}

type faultList struct {
	Faults []Fault `json:"faults"`
}

type adminError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// faultsAdmin serves /shop/admin/faults: GET lists, POST sets one
// endpoint's fault (JSON or form; an all-zero fault removes it), DELETE
// clears one (?endpoint=) or all. It answers JSON, being a later addition
// for operations rather than part of the old application.
func (s *Shop) faultsAdmin(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodPost:
		f, err := s.parseFault(w, r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, adminError{Code: "BAD_FAULT", Message: err.Error()})
			return nil
		}
		s.faults.update(func(m map[string]Fault) {
			if f.none() {
				delete(m, f.Endpoint)
			} else {
				m[f.Endpoint] = f
			}
		})
		s.logger(r.Context()).WarnContext(r.Context(), "fault set", "endpoint", f.Endpoint, "latency_ms", f.LatencyMS,
			"error_rate", f.ErrorRate, "outage", f.Outage, "outage_mode", f.OutageMode)
	case http.MethodDelete:
		if err := r.ParseForm(); err != nil {
			writeJSON(w, http.StatusBadRequest, adminError{Code: "BAD_FAULT", Message: err.Error()})
			return nil
		}
		if ep := r.Form.Get("endpoint"); ep != "" {
			e, err := s.faults.normalize(ep)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, adminError{Code: "BAD_FAULT", Message: err.Error()})
				return nil
			}
			s.faults.update(func(m map[string]Fault) { delete(m, e) })
		} else {
			s.faults.update(func(m map[string]Fault) { clear(m) })
		}
		s.logger(r.Context()).WarnContext(r.Context(), "faults cleared", "endpoint", r.Form.Get("endpoint"))
	}
	writeJSON(w, http.StatusOK, faultList{Faults: s.faults.list()})
	return nil
}

func (s *Shop) parseFault(w http.ResponseWriter, r *http.Request) (Fault, error) {
	var f Fault
	r.Body = http.MaxBytesReader(w, r.Body, faultBodySize)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return f, fmt.Errorf("malformed JSON: %w", err)
		}
	} else {
		if err := r.ParseForm(); err != nil {
			return f, fmt.Errorf("malformed form: %w", err)
		}
		f.Endpoint = r.Form.Get("endpoint")
		f.OutageMode = r.Form.Get("outage_mode")
		var err error
		if v := r.Form.Get("latency_ms"); v != "" {
			if f.LatencyMS, err = strconv.Atoi(v); err != nil {
				return f, fmt.Errorf("latency_ms: %w", err)
			}
		}
		if v := r.Form.Get("error_rate"); v != "" {
			if f.ErrorRate, err = strconv.ParseFloat(v, 64); err != nil {
				return f, fmt.Errorf("error_rate: %w", err)
			}
		}
		if v := r.Form.Get("outage"); v != "" {
			if v == "on" { // an HTML checkbox
				v = "true"
			}
			if f.Outage, err = strconv.ParseBool(v); err != nil {
				return f, fmt.Errorf("outage: %w", err)
			}
		}
	}
	e, err := s.faults.normalize(f.Endpoint)
	if err != nil {
		return f, err
	}
	f.Endpoint = e
	if f.LatencyMS < 0 || f.LatencyMS > maxLatencyMS {
		return f, fmt.Errorf("latency_ms must be 0 to %d, got %d", maxLatencyMS, f.LatencyMS)
	}
	if math.IsNaN(f.ErrorRate) || f.ErrorRate < 0 || f.ErrorRate > 1 {
		return f, fmt.Errorf("error_rate must be 0 to 1, got %v", f.ErrorRate)
	}
	switch f.OutageMode {
	case "":
		if f.Outage {
			f.OutageMode = outage503
		}
	case outage503, outageClose:
		if !f.Outage {
			return f, fmt.Errorf("outage_mode %q needs outage true", f.OutageMode)
		}
	default:
		return f, fmt.Errorf("outage_mode must be %q or %q, got %q", outage503, outageClose, f.OutageMode)
	}
	return f, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
