package gateway

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/ficus-gw/ficus/gateway/proxy"
	"github.com/ficus-gw/ficus/gateway/route"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of the proxy path, declared once: dashboards and alert rules
// refer to these constants.
const (
	MetricRequests        = "ficus_requests_total"
	MetricRequestDuration = "ficus_request_duration_seconds"
	MetricUpstreamErrors  = "ficus_upstream_errors_total"
	MetricDecisions       = "ficus_decisions_total"
	MetricFallbacks       = "ficus_fallbacks_total"
	MetricBreakerState    = "ficus_breaker_state"
	MetricRetries         = "ficus_retries_total"
	MetricRateLimited     = "ficus_rate_limited_total"
	MetricInFlight        = "ficus_requests_in_flight"
	MetricRequestBytes    = "ficus_request_bytes_total"
	MetricResponseBytes   = "ficus_response_bytes_total"
	MetricOpenConnections = "ficus_open_connections"
	MetricConfigReloads   = "ficus_config_reloads_total"
)

// Label names. On request metrics `backend` is the side that served
// (legacy or new); on per-upstream metrics (ficus_breaker_state)
// `upstream` is the upstream's name from the configuration. A route's
// side maps to an upstream through its config (route.legacy, route.new).
const (
	LabelBackend  = "backend"
	LabelUpstream = "upstream"
)

// Results of a configuration reload, the label values of
// MetricConfigReloads.
const (
	ReloadApplied  = "applied"
	ReloadRejected = "rejected"
)

const numBackends = 2 // decide.Legacy, decide.New

var numReasons = len([...]decide.Reason{decide.ReasonDefault, decide.ReasonOverride, decide.ReasonPinned,
	decide.ReasonFlag, decide.ReasonCanary, decide.ReasonFallback, decide.ReasonError, decide.ReasonAffinity})

// durationBuckets are classic buckets (seconds) spanning a fast cache hit
// to a legacy page that is about to time out.
var durationBuckets = []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// statusText holds the code label of every status 100..599 so the hot path
// never formats a number.
var statusText = func() (s [600]string) {
	for i := 100; i < len(s); i++ {
		s[i] = strconv.Itoa(i)
	}
	return
}()

// metrics holds the pre-resolved children of every route×backend so the
// hot path only does atomic adds.
type metrics struct {
	requests *prometheus.CounterVec
	// inFlight counts requests in the handler; the gauge reads it at scrape
	// time, so a request pays one atomic add each way rather than a
	// compare-and-swap loop on a float.
	inFlight      atomic.Int64
	inFlightGauge prometheus.GaugeFunc
	perRoute      []routeMetrics
	codeCache     []codeCounters        // route × backend × method
	reloads       [2]prometheus.Counter // applied, rejected
}

type routeMetrics struct {
	duration    [numBackends]prometheus.Observer
	upErrors    [numBackends][proxy.NumFailures]prometheus.Counter
	decisions   [numBackends][]prometheus.Counter // by decide.Reason
	retries     [numBackends]prometheus.Counter
	reqBytes    [numBackends]prometheus.Counter
	respBytes   [numBackends]prometheus.Counter
	fallbacks   prometheus.Counter // new -> legacy
	rateLimited prometheus.Counter
}

// codeCounters caches the requests counter of one route×backend×method by
// status code: reads are a lock-free map lookup, a new code copies the map.
type codeCounters struct {
	m  atomic.Pointer[map[uint16]prometheus.Counter]
	mu sync.Mutex
}

func newMetrics(reg *prometheus.Registry, tb *route.Table) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequests, Help: "Requests answered, by Ficus route, backend that served them, method and status code.",
		}, []string{"route", "backend", "method", "code"}),
	}
	m.inFlightGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: MetricInFlight, Help: "Requests being served by the public listener.",
	}, func() float64 { return float64(m.inFlight.Load()) })
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: MetricRequestDuration, Help: "Time from request read to response headers, by route and serving backend.",
		Buckets: durationBuckets,
	}, []string{"route", "backend"})
	upErrors := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricUpstreamErrors, Help: "Failed exchanges with an upstream, by route, backend and reason.",
	}, []string{"route", "backend", "reason"})
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricDecisions, Help: "Routing decisions, by route, backend chosen and why.",
	}, []string{"route", "backend", "reason"})
	fallbacks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricFallbacks, Help: "Requests the new side failed and the legacy side served.",
	}, []string{"route", "from", "to"})
	retries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRetries, Help: "Safe requests re-sent after a connection error, by route and backend.",
	}, []string{"route", "backend"})
	rateLimited := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRateLimited, Help: "Requests refused with 429 by the route's rate limit.",
	}, []string{"route"})
	reqBytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRequestBytes, Help: "Request body bytes forwarded, by route and serving backend (bodies with a Content-Length; chunked bodies are not counted).",
	}, []string{"route", "backend"})
	respBytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricResponseBytes, Help: "Response body bytes relayed from the upstreams, by route and serving backend (bodies with a Content-Length; streamed bodies of unknown length are not counted).",
	}, []string{"route", "backend"})
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricConfigReloads, Help: "Configuration reloads by result: applied, rejected (the old configuration kept serving).",
	}, []string{"result"})
	m.reloads = [2]prometheus.Counter{reloads.WithLabelValues(ReloadApplied), reloads.WithLabelValues(ReloadRejected)}
	for _, c := range []prometheus.Collector{m.requests, m.inFlightGauge, duration, upErrors, decisions, fallbacks, retries, rateLimited, reqBytes, respBytes, reloads} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.perRoute = make([]routeMetrics, tb.Len())
	m.codeCache = make([]codeCounters, tb.Len()*numBackends*int(route.NumMethods))
	for i := range tb.Len() {
		name := tb.Route(i).Name
		rm := &m.perRoute[i]
		for b := range numBackends {
			bn := decide.Backend(b).String()
			rm.duration[b] = duration.WithLabelValues(name, bn)
			rm.retries[b] = retries.WithLabelValues(name, bn)
			rm.reqBytes[b] = reqBytes.WithLabelValues(name, bn)
			rm.respBytes[b] = respBytes.WithLabelValues(name, bn)
			for f := proxy.FailConnect; f < proxy.NumFailures; f++ {
				rm.upErrors[b][f] = upErrors.WithLabelValues(name, bn, f.String())
			}
			rm.decisions[b] = make([]prometheus.Counter, numReasons)
			for r := range numReasons {
				rm.decisions[b][r] = decisions.WithLabelValues(name, bn, decide.Reason(r).String())
			}
		}
		rm.fallbacks = fallbacks.WithLabelValues(name, decide.New.String(), decide.Legacy.String())
		rm.rateLimited = rateLimited.WithLabelValues(name)
	}
	for i := range m.codeCache {
		empty := map[uint16]prometheus.Counter{}
		m.codeCache[i].m.Store(&empty)
	}
	return m, nil
}

// request counts one answered request.
func (m *metrics) request(ri int, b decide.Backend, meth route.Method, code int, routeName string) {
	if code < 100 || code >= len(statusText) {
		code = 500
	}
	cc := &m.codeCache[(ri*numBackends+int(b))*int(route.NumMethods)+int(meth)]
	if c, ok := (*cc.m.Load())[uint16(code)]; ok {
		c.Inc()
		return
	}
	cc.mu.Lock()
	old := *cc.m.Load()
	c, ok := old[uint16(code)]
	if !ok {
		c = m.requests.WithLabelValues(routeName, b.String(), meth.String(), statusText[code])
		next := make(map[uint16]prometheus.Counter, len(old)+1)
		for k, v := range old {
			next[k] = v
		}
		next[uint16(code)] = c
		cc.m.Store(&next)
	}
	cc.mu.Unlock()
	c.Inc()
}

// bytes counts one exchange's body sizes as declared by Content-Length
// (negative: chunked or unknown, not counted). Integral adds are one
// atomic add each.
func (m *metrics) bytes(ri int, b decide.Backend, reqLen, respLen int) {
	rm := &m.perRoute[ri]
	if reqLen > 0 {
		rm.reqBytes[b].Add(float64(reqLen))
	}
	if respLen > 0 {
		rm.respBytes[b].Add(float64(respLen))
	}
}

// RecordConfigReload counts one configuration reload in
// ficus_config_reloads_total: result applied when err is nil, else
// rejected. Whoever reloads (SIGHUP, POST /admin/reload) calls it once per
// attempt.
func (g *Gateway) RecordConfigReload(err error) {
	if err == nil {
		g.m.reloads[0].Inc()
	} else {
		g.m.reloads[1].Inc()
	}
}
