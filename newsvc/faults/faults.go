// Package faults injects misbehaviour into a new service for drills: a share
// of requests failing, added latency, or a full outage, switched at run time
// from a tiny admin HTTP handler. It exists so a rollback drill can be run
// (make the new catalog fail 5% of answers at the 25% step and watch the
// autopilot roll back), like the legacy shop's /shop/admin/faults.
//
// Demo only. The admin handler is served on its own loopback listener
// (NewAdminServer refuses any other address), never on the service's port
// and so never through the gateway's public port.
package faults

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/gofiber/fiber/v2"
)

// Limits of a fault.
const (
	MaxLatency = 60 * time.Second
	bodyLimit  = 4 << 10
)

// Fault is the service's injected misbehaviour. Effects apply in this order:
// outage (nothing else happens), latency, then the error rate. The zero
// Fault injects nothing.
type Fault struct {
	// PathPrefix limits the fault to request paths starting with it, e.g.
	// "/api/v1/products". Empty: every path.
	PathPrefix string `json:"path_prefix,omitempty"`
	// ErrorRate is the share of requests, 0 to 1 (0.05 is 5%), answered
	// 500 INTERNAL with the service's error body.
	ErrorRate float64 `json:"error_rate"`
	// LatencyMS is added before the request is handled, in milliseconds
	// (at most 60000).
	LatencyMS int `json:"latency_ms"`
	// Outage answers every request 503 DEPENDENCY_UNAVAILABLE with
	// Retry-After and closes the connection.
	Outage bool `json:"outage"`
}

// Validate says what is wrong with f, or nil.
func (f Fault) Validate() error {
	var errs []string
	if f.ErrorRate < 0 || f.ErrorRate > 1 || f.ErrorRate != f.ErrorRate {
		errs = append(errs, fmt.Sprintf("error_rate: must be between 0 and 1 (0.05 is 5%%), got %v", f.ErrorRate))
	}
	if f.LatencyMS < 0 || time.Duration(f.LatencyMS)*time.Millisecond > MaxLatency {
		errs = append(errs, fmt.Sprintf("latency_ms: must be between 0 and %d, got %d", MaxLatency.Milliseconds(), f.LatencyMS))
	}
	if f.PathPrefix != "" && !strings.HasPrefix(f.PathPrefix, "/") {
		errs = append(errs, fmt.Sprintf("path_prefix: must start with /, got %q", f.PathPrefix))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// Injector holds the active fault; the request path reads it with one atomic
// load.
type Injector struct {
	cur  atomic.Pointer[Fault]
	rand func() float64
	log  *slog.Logger
}

// New returns an Injector injecting nothing. rnd draws uniformly from [0, 1)
// (nil: math/rand/v2); log may be nil.
func New(rnd func() float64, log *slog.Logger) *Injector {
	if rnd == nil {
		rnd = rand.Float64
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	in := &Injector{rand: rnd, log: log}
	in.cur.Store(&Fault{})
	return in
}

// Fault returns the active fault.
func (in *Injector) Fault() Fault { return *in.cur.Load() }

// Set replaces the active fault after validating it.
func (in *Injector) Set(f Fault) error {
	if err := f.Validate(); err != nil {
		return err
	}
	in.cur.Store(&f)
	in.log.Warn("fault injection changed", "path_prefix", f.PathPrefix, "error_rate", f.ErrorRate, "latency_ms", f.LatencyMS, "outage", f.Outage)
	return nil
}

// Middleware injects the active fault. Install it after the request-id
// middleware and under the app's apierr ErrorHandler, which writes the
// injected errors as every other error.
func (in *Injector) Middleware() fiber.Handler {
	return func(c *fiber.Ctx) error {
		f := in.cur.Load()
		if *f == (Fault{}) || (f.PathPrefix != "" && !strings.HasPrefix(c.Path(), f.PathPrefix)) {
			return c.Next()
		}
		if f.Outage {
			c.Context().SetConnectionClose()
			return &apierr.Error{Code: apierr.CodeDependency, Message: "injected outage (fault injection)", RetryAfter: 30}
		}
		if f.LatencyMS > 0 {
			time.Sleep(time.Duration(f.LatencyMS) * time.Millisecond) // the injected delay itself
		}
		if f.ErrorRate > 0 && in.rand() < f.ErrorRate {
			return apierr.New(apierr.CodeInternal, "injected error (fault injection)")
		}
		return c.Next()
	}
}

// AdminPath is where AdminHandler answers.
const AdminPath = "/admin/faults"

type adminError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// AdminHandler serves AdminPath: GET shows the active fault, PUT or POST
// sets it (a JSON Fault; unknown fields are refused), DELETE clears it.
// Every answer is JSON; a bad fault is 400 BAD_FAULT naming the field.
func (in *Injector) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(AdminPath, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
		case http.MethodPut, http.MethodPost:
			if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
				writeJSON(w, http.StatusUnsupportedMediaType, adminError{"UNSUPPORTED_MEDIA_TYPE", "send the fault as application/json"})
				return
			}
			var f Fault
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, bodyLimit))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&f); err != nil {
				writeJSON(w, http.StatusBadRequest, adminError{"BAD_FAULT", "not a fault: " + err.Error()})
				return
			}
			if err := in.Set(f); err != nil {
				writeJSON(w, http.StatusBadRequest, adminError{"BAD_FAULT", err.Error()})
				return
			}
		case http.MethodDelete:
			_ = in.Set(Fault{})
		default:
			w.Header().Set("Allow", "GET, PUT, POST, DELETE")
			writeJSON(w, http.StatusMethodNotAllowed, adminError{"METHOD_NOT_ALLOWED", r.Method + " is not allowed here"})
			return
		}
		writeJSON(w, http.StatusOK, in.Fault())
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// NewAdminServer returns an http.Server for the admin handler on addr, which
// must be a loopback ip:port: fault injection is never exposed beyond the
// machine. The caller listens (ListenAndServe, or Serve on its own
// listener) and shuts it down.
func NewAdminServer(addr string, in *Injector) (*http.Server, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	return &http.Server{Addr: addr, Handler: in.AdminHandler(), ReadHeaderTimeout: 5 * time.Second}, nil
}

// CheckLoopback returns an error unless addr is a loopback ip:port.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("faults: admin address %q: %w", addr, err)
	}
	ip := net.ParseIP(host) // a name (even localhost) could resolve elsewhere
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("faults: admin address %q is not loopback: fault injection must not be reachable from other machines", addr)
	}
	return nil
}
