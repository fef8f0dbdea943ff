// Package svcmetrics holds what every Ficus process exports besides its own
// metrics: ficus_build_info, the Go runtime and process collectors, HTTP
// request counters for the services (legacy shop, Catalog, Order, ACL
// backend) and the /metrics handler.
package svcmetrics

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names, declared once; dashboards and alerts refer to them.
const (
	MetricBuildInfo       = "ficus_build_info"
	MetricRequests        = "ficus_http_requests_total"
	MetricRequestDuration = "ficus_http_request_duration_seconds"
)

// Unmatched is the handler label of requests no route of the service
// matched (404s for arbitrary paths), so that scanners cannot create a
// series per path.
const Unmatched = "unmatched"

// linkedRevision is the VCS revision the Makefile passes at link time
// (-X github.com/ficus-gw/ficus/internal/svcmetrics.linkedRevision=...),
// used when the toolchain stamped none (GOFLAGS=-buildvcs=false, or a
// build outside a checkout). Set only by the linker.
var linkedRevision string

// Build describes the running binary: the version set at link time
// (-X main.version=...), the VCS revision the Go toolchain stamped, and the
// Go version.
type Build struct {
	Version, Revision, GoVersion string
}

// ReadBuild returns the build of this binary; version is what the linker
// set (an empty version reads "dev"). The revision is the toolchain's VCS
// stamp ("-dirty" appended when the tree had local changes), else the one
// the Makefile linked in, else "unknown" (go test, go run).
func ReadBuild(version string) Build {
	b := Build{Version: version, Revision: "unknown", GoVersion: runtime.Version()}
	if b.Version == "" {
		b.Version = "dev"
	}
	if linkedRevision != "" {
		b.Revision = linkedRevision
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && b.Revision != "unknown" && b.Revision != linkedRevision {
			b.Revision += "-dirty"
		}
	}
	return b
}

// BuildInfo is ficus_build_info{version,revision,goversion} 1: join it to
// any series by job and instance to see which build produced it.
func BuildInfo(b Build) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: MetricBuildInfo,
		Help: "Always 1; its labels name the running build: version (set at link time), VCS revision and Go version.",
		ConstLabels: prometheus.Labels{
			"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion,
		},
	})
	g.Set(1)
	return g
}

// NewRegistry returns a registry holding ficus_build_info and the Go
// runtime and process collectors: what every Ficus process exports.
func NewRegistry(version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(BuildInfo(ReadBuild(version)), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves g in the Prometheus text format; a collector's error is a
// 500 (a partial scrape would read as a reset to the dashboards).
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
}

// durationBuckets span a cached read to a legacy page about to time out.
var durationBuckets = []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// HTTP counts a service's answered requests by handler (the route
// pattern, never the raw path), method and status code, and times them by
// handler. A nil *HTTP counts nothing.
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTP registers ficus_http_requests_total and
// ficus_http_request_duration_seconds with reg.
func NewHTTP(reg prometheus.Registerer) (*HTTP, error) {
	h := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequests, Help: "Requests answered by this service, by handler (route pattern), method and status code.",
		}, []string{"handler", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricRequestDuration, Help: "Time to answer a request, by handler (route pattern).",
			Buckets: durationBuckets,
		}, []string{"handler"}),
	}
	for _, c := range []prometheus.Collector{h.requests, h.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Observe counts one answered request.
func (h *HTTP) Observe(handler, method string, code int, d time.Duration) {
	if h == nil {
		return
	}
	h.requests.WithLabelValues(handler, methodLabel(method), strconv.Itoa(code)).Inc()
	h.duration.WithLabelValues(handler).Observe(d.Seconds())
}

// Fiber returns a middleware that counts every request of a Fiber app.
// Errors returned by later handlers are rendered with the app's
// ErrorHandler here, so the counted status is the one sent.
func (h *HTTP) Fiber() fiber.Handler {
	// endpoints are the app's method+path routes, middleware excluded:
	// after Next, c.Route() is the last route entered, a middleware when no
	// endpoint matched. Read once the app serves, when it is complete.
	var (
		once      sync.Once
		endpoints map[string]bool
	)
	return func(c *fiber.Ctx) error {
		once.Do(func() {
			endpoints = map[string]bool{}
			for _, rt := range c.App().GetRoutes(true) {
				endpoints[rt.Method+" "+rt.Path] = true
			}
		})
		start := time.Now()
		if err := c.Next(); err != nil {
			if herr := c.App().ErrorHandler(c, err); herr != nil {
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
		}
		handler := Unmatched
		if rt := c.Route(); rt != nil && endpoints[rt.Method+" "+rt.Path] {
			handler = rt.Path
		}
		h.Observe(handler, c.Method(), c.Response().StatusCode(), time.Since(start))
		return nil
	}
}

// Mount serves g at GET /metrics on app.
func Mount(app *fiber.App, g prometheus.Gatherer) {
	app.Get("/metrics", adaptor.HTTPHandler(Handler(g)))
}

// methodLabel returns a constant for method: a client-chosen method must
// not make a series, and Fiber's c.Method() is a view of a reused buffer
// that must not be kept as a label value.
func methodLabel(method string) string {
	for _, m := range [...]string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		if method == m {
			return m
		}
	}
	return "other"
}
