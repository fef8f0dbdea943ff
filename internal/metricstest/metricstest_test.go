package metricstest

import (
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
