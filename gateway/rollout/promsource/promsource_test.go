package promsource

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/gateway"
	"github.com/ficus-gw/ficus/gateway/shadow"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// replica is a loopback /metrics endpoint with the gateway's metric names,
// standing in for one gateway replica.
type replica struct {
	reqs     *prometheus.CounterVec
	dur      *prometheus.HistogramVec
	fallback *prometheus.CounterVec
	breaker  prometheus.Gauge
	shadow   *prometheus.CounterVec
	addr     string
}

func startReplica(t *testing.T) *replica {
	t.Helper()
	reg := prometheus.NewRegistry()
	r := &replica{
		reqs:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: gateway.MetricRequests, Help: "h"}, []string{"route", "backend", "method", "code"}),
		dur:      prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: gateway.MetricRequestDuration, Help: "h", Buckets: []float64{.01, .05, .1, .5}}, []string{"route", "backend"}),
		fallback: prometheus.NewCounterVec(prometheus.CounterOpts{Name: gateway.MetricFallbacks, Help: "h"}, []string{"route", "from", "to"}),
		breaker:  prometheus.NewGauge(prometheus.GaugeOpts{Name: gateway.MetricBreakerState, Help: "h", ConstLabels: prometheus.Labels{gateway.LabelUpstream: "catalog"}}),
		shadow:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: shadow.MetricRequests, Help: "h"}, []string{"route", "result"}),
	}
	reg.MustRegister(r.reqs, r.dur, r.fallback, r.breaker, r.shadow)
	// Every series exists from the first scrape, at zero, as in the gateway.
	for _, route := range []string{"products", "search", "orders"} {
		for _, b := range []string{"new", "legacy"} {
			r.reqs.WithLabelValues(route, b, "GET", "200")
			r.reqs.WithLabelValues(route, b, "GET", "503")
			r.dur.WithLabelValues(route, b)
		}
		r.fallback.WithLabelValues(route, "new", "legacy")
		r.shadow.WithLabelValues(route, "match")
		r.shadow.WithLabelValues(route, "diff")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	r.addr = ln.Addr().String()
	return r
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startPrometheus runs Debian's prometheus on a free loopback port with a
// temporary storage directory, scraping targets every second; it is
// stopped by PID when the test ends.
func startPrometheus(t *testing.T, targets ...string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus not installed (apt-get install prometheus): the Prometheus source is tested against the real one only")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n  - job_name: ficus\n    static_configs: [{targets: ['%s']}]\n", strings.Join(targets, "','"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	base := "http://" + addr
	waitFor(t, 30*time.Second, "Prometheus ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v", what, limit)
		}
		time.Sleep(200 * time.Millisecond) // polling a condition, bounded by the deadline
	}
}

// instant returns the sum of an instant query's values (-1 on error).
func instant(base, q string) float64 {
	var sum float64
	src, _ := New(base, nil)
	v, err := src.query(context.Background(), q, time.Now())
	if err != nil {
		return -1
	}
	for _, p := range v {
		sum += p.value
	}
	return sum
}

// TestSampleSumsEveryReplica: two replicas serve a cohort (products and
// search); the source sums both routes over both replicas, splits the sides,
// counts 5xx as failures, rebuilds the latency histogram, and sees the new
// upstream's breaker open on either replica. A route outside the cohort is
// not counted.
func TestSampleSumsEveryReplica(t *testing.T) {
	t.Parallel()
	a, b := startReplica(t), startReplica(t)
	base := startPrometheus(t, a.addr, b.addr)
	waitFor(t, 30*time.Second, "both replicas scraped", func() bool { return instant(base, `sum(up{job="ficus"})`) == 2 })
	// Give Prometheus a scrape at zero before the traffic.
	waitFor(t, 30*time.Second, "zero samples", func() bool {
		return instant(base, fmt.Sprintf(`count(count_over_time(%s[1m]) >= 2)`, gateway.MetricRequests)) > 0
	})
	for _, r := range []*replica{a, b} {
		r.reqs.WithLabelValues("products", "new", "GET", "200").Add(380)
		r.reqs.WithLabelValues("products", "new", "GET", "503").Add(20)
		r.reqs.WithLabelValues("search", "new", "GET", "200").Add(100)
		r.reqs.WithLabelValues("products", "legacy", "GET", "200").Add(1500)
		r.reqs.WithLabelValues("orders", "new", "GET", "503").Add(1000) // not in the cohort
		for range 500 {
			r.dur.WithLabelValues("products", "new").Observe(0.07) // (0.05, 0.1]
		}
		for range 1500 {
			r.dur.WithLabelValues("products", "legacy").Observe(0.02) // (0.01, 0.05]
		}
		r.fallback.WithLabelValues("products", "new", "legacy").Add(3)
		r.shadow.WithLabelValues("products", "match").Add(95)
		r.shadow.WithLabelValues("products", "diff").Add(5)
	}
	b.breaker.Set(2)
	want := float64(2 * (380 + 20 + 100 + 1500 + 1000))
	waitFor(t, 30*time.Second, "the traffic scraped", func() bool { return instant(base, `sum(`+gateway.MetricRequests+`)`) == want })

	src, err := New(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := src.Sample(context.Background(), []string{"products", "search"}, "catalog", 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// increase() extrapolates to the window's edges (by up to half a
	// scrape interval's worth on each side, more when scrapes are late on a
	// loaded machine): allow up to 1.9x. Missing a replica would halve a
	// value; counting the route outside the cohort would triple "new".
	near := func(name string, got uint64, want float64) {
		t.Helper()
		if float64(got) < want*0.95 || float64(got) > want*1.9 {
			t.Errorf("%s = %d, want about %v", name, got, want)
		}
	}
	near("new requests", s.New.Requests, 1000)
	near("new errors", s.New.Errors, 40)
	near("legacy requests", s.Legacy.Requests, 3000)
	near("fallbacks", s.Fallbacks, 6)
	near("shadow compared", s.ShadowCompared, 200)
	near("shadow diffs", s.ShadowRealDiffs, 10)
	if s.Legacy.Errors != 0 {
		t.Errorf("legacy errors = %d, want 0", s.Legacy.Errors)
	}
	if !s.BreakerOpen {
		t.Error("breaker open on replica b not seen")
	}
	if len(s.New.Bounds) != 4 || len(s.New.Buckets) != 5 || s.New.Buckets[2] == 0 || s.New.Buckets[1] != 0 || s.Legacy.Buckets[1] == 0 {
		t.Errorf("histograms: new %v %v, legacy %v", s.New.Bounds, s.New.Buckets, s.Legacy.Buckets)
	}
	if p99, ok := s.New.P99(); !ok || p99 < 50*time.Millisecond || p99 > 100*time.Millisecond {
		t.Errorf("new p99 = %v, want in (50ms, 100ms]", p99)
	}

	// A broken query is an error, not a zero.
	if _, err := src.query(context.Background(), "sum(", time.Now()); err == nil {
		t.Error("a bad query returned no error")
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "127.0.0.1:9090", "ftp://x"} {
		if _, err := New(u, nil); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}
