package metricstest

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestValue(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "h"}, []string{"route", "code"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x_seconds", Help: "h"})
	reg.MustRegister(c, h)
	c.WithLabelValues("a", "200").Add(3)
	c.WithLabelValues("b", "200").Add(5)
	h.Observe(1)
	h.Observe(2)
	cases := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"x_total", []string{"route", "b"}, 5},
		{"x_total", []string{"route", "a", "code", "200"}, 3},
		{"x_total", []string{"route", "a", "code", "500"}, 0},
		{"x_seconds", nil, 2},
		{"absent_total", nil, 0},
	}
	for _, tc := range cases {
		if got := Value(t, reg, tc.name, tc.labels...); got != tc.want {
			t.Errorf("Value(%s, %v) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failed []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failed = append(r.failed, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// lint runs Lint on body in its own goroutine (Fatalf ends it) and returns
// the recorded failures.
func lint(t *testing.T, body string) []string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Lint(r, []byte(body))
	}()
	<-done
	return r.failed
}

func TestLintCatchesSeededProblems(t *testing.T) {
	t.Parallel()
	good := "# HELP x_total Things.\n# TYPE x_total counter\nx_total{route=\"a\"} 3\n"
	if failed := lint(t, good); len(failed) != 0 {
		t.Fatalf("a clean exposition failed: %v", failed)
	}
	for name, body := range map[string]string{
		"counter without _total": "# HELP x Things.\n# TYPE x counter\nx 3\n",
		"no HELP":                "# TYPE x_total counter\nx_total 3\n",
		"unparseable":            "# TYPE x_total counter\nx_total{route=\"a} 3\n",
		"camelCase name":         "# HELP fooBar_total Things.\n# TYPE fooBar_total counter\nfooBar_total 1\n",
	} {
		if failed := lint(t, body); len(failed) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
}
