package shadow

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/prometheus/client_golang/prometheus"
)

func jsonAnswer(status int, body string) answer {
	return answer{status: status, headers: map[string]string{"Content-Type": "application/json"}, body: []byte(body)}
}

func TestCompareFindsFieldPatterns(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		cmp     config.Compare
		a, b    answer
		want    []string // field patterns
		wantRaw []string // concrete paths, when they matter
	}{
		{
			name: "equal bodies",
			a:    jsonAnswer(200, `{"sku":"A","price":{"amountMinor":1299}}`),
			b:    jsonAnswer(200, `{"price":{"amountMinor":1299},"sku":"A"}`),
		},
		{
			name: "array index becomes a star",
			a:    jsonAnswer(200, `{"items":[{"sku":"A","price":1},{"sku":"B","price":2}]}`),
			b:    jsonAnswer(200, `{"items":[{"sku":"A","price":1},{"sku":"B","price":3}]}`),
			want: []string{"/items/*/price"}, wantRaw: []string{"/items/1/price"},
		},
		{
			name: "reordered array matched by key is equal",
			cmp:  config.Compare{ArrayKeys: map[string]string{"/items": "sku"}},
			a:    jsonAnswer(200, `{"items":[{"sku":"A","price":1},{"sku":"B","price":2}]}`),
			b:    jsonAnswer(200, `{"items":[{"sku":"B","price":2},{"sku":"A","price":1}]}`),
		},
		{
			name: "keyed array difference is attributed to the element's field",
			cmp:  config.Compare{ArrayKeys: map[string]string{"/items": "sku"}},
			a:    jsonAnswer(200, `{"items":[{"sku":"A","price":1},{"sku":"B","price":2}]}`),
			b:    jsonAnswer(200, `{"items":[{"sku":"B","price":5},{"sku":"A","price":1}]}`),
			want: []string{"/items/*/price"}, wantRaw: []string{"/items/B/price"},
		},
		{
			name: "reordered array without key differs",
			a:    jsonAnswer(200, `{"items":[{"sku":"A"},{"sku":"B"}]}`),
			b:    jsonAnswer(200, `{"items":[{"sku":"B"},{"sku":"A"}]}`),
			want: []string{"/items/*/sku", "/items/*/sku"},
		},
		{
			name: "ignore rule with a wildcard covers every element",
			cmp:  config.Compare{Ignore: []config.IgnoreRule{{Path: "/items/*/updatedAt", Owner: "o", Reason: "r", Expires: "2026-05-01"}}},
			a:    jsonAnswer(200, `{"items":[{"updatedAt":"x"},{"updatedAt":"y"}],"n":1}`),
			b:    jsonAnswer(200, `{"items":[{"updatedAt":"z"},{"updatedAt":"w"}],"n":2}`),
			want: []string{"/n"},
		},
		{
			name: "ignore rule covers the subtree below it",
			cmp:  config.Compare{Ignore: []config.IgnoreRule{{Path: "/meta", Owner: "o", Reason: "r", Expires: "2030-01-01"}}},
			a:    jsonAnswer(200, `{"meta":{"a":{"b":1}}}`),
			b:    jsonAnswer(200, `{"meta":{"a":{"b":2},"c":3}}`),
		},
		{
			name: "expired ignore rule no longer applies",
			cmp:  config.Compare{Ignore: []config.IgnoreRule{{Path: "/updatedAt", Owner: "o", Reason: "r", Expires: "2026-04-30"}}},
			a:    jsonAnswer(200, `{"updatedAt":"x"}`),
			b:    jsonAnswer(200, `{"updatedAt":"y"}`),
			want: []string{"/updatedAt"},
		},
		{
			name: "status and error code, not the message",
			a:    jsonAnswer(404, `{"code":"NOT_FOUND","message":"no product A","requestId":"1"}`),
			b:    jsonAnswer(400, `{"code":"VALIDATION_FAILED","message":"bad sku","requestId":"2"}`),
			want: []string{"status", "/code"},
		},
		{
			name: "charset is not a content type difference",
			a:    answer{status: 200, headers: map[string]string{"Content-Type": "application/json; charset=utf-8"}, body: []byte(`{}`)},
			b:    answer{status: 200, headers: map[string]string{"Content-Type": "Application/JSON"}, body: []byte(`{ }`)},
		},
		{
			name: "content type difference",
			a:    answer{status: 200, headers: map[string]string{"Content-Type": "application/json"}, body: []byte(`{}`)},
			b:    answer{status: 200, headers: map[string]string{"Content-Type": "text/xml"}, body: []byte(`<a/>`)},
			want: []string{"header:Content-Type", "body"},
		},
		{
			name: "added subtree below an array",
			a:    jsonAnswer(200, `{"items":[]}`),
			b:    jsonAnswer(200, `{"items":[{"sku":"A"}]}`),
			want: []string{"/items/*"},
		},
		{
			name: "pointer escapes are kept",
			a:    jsonAnswer(200, `{"a/b":{"c~d":1}}`),
			b:    jsonAnswer(200, `{"a/b":{"c~d":2}}`),
			want: []string{"/a~1b/c~0d"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.cmp.Headers == nil {
				tc.cmp.Headers = []string{"content-type"}
			}
			cm, err := newComparer(tc.cmp)
			if err != nil {
				t.Fatal(err)
			}
			ds := cm.compare(day, tc.a, tc.b)
			var got, raw []string
			for _, d := range ds {
				got = append(got, d.Field)
				raw = append(raw, d.Path)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("fields = %q, want %q (%+v)", got, tc.want, ds)
			}
			if tc.wantRaw != nil && !slices.Equal(raw, tc.wantRaw) {
				t.Errorf("paths = %q, want %q", raw, tc.wantRaw)
			}
		})
	}
}

func TestIsRealAppliesBothThresholds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		diff, noise float64
		want        bool
	}{
		{diff: 0.5, noise: 0, want: true},
		{diff: 1, noise: 1, want: false},       // a timestamp: always different, on both
		{diff: 0.11, noise: 0.10, want: false}, // 10% above noise: under the 20% relative
		{diff: 0.13, noise: 0.10, want: true},
		{diff: 0.0002, noise: 0, want: false}, // under the 0.03% absolute
		{diff: 0.0004, noise: 0, want: true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%v_over_%v", tc.diff, tc.noise), func(t *testing.T) {
			t.Parallel()
			if got := isReal(tc.diff, tc.noise, 0.2, 0.0003); got != tc.want {
				t.Errorf("isReal(%v, %v) = %v, want %v", tc.diff, tc.noise, got, tc.want)
			}
		})
	}
}

func TestFieldCardinalityIsBounded(t *testing.T) {
	t.Parallel()
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total"}, []string{"route", "field"})
	s := routeStats{fields: map[string]*fieldStats{}}
	for i := range 3 * maxFieldsPerRoute {
		s.record([]string{fmt.Sprintf("/f%d", i)}, nil, false, vec, "r")
	}
	if n := len(s.fields); n != maxFieldsPerRoute+1 {
		t.Errorf("%d distinct fields kept, want %d (+ other)", n, maxFieldsPerRoute)
	}
	if got := s.fields[FieldOther].diffs; got != 2*maxFieldsPerRoute {
		t.Errorf("other = %d, want %d", got, 2*maxFieldsPerRoute)
	}
	ch := make(chan prometheus.Metric, 1000)
	vec.Collect(ch)
	close(ch)
	if n := len(ch); n != maxFieldsPerRoute+1 {
		t.Errorf("%d metric children, want %d", n, maxFieldsPerRoute+1)
	}
}

func TestSamplingIsDeterministic(t *testing.T) {
	t.Parallel()
	in := 0
	for i := range 10000 {
		id := []byte(fmt.Sprintf("req-%d", i))
		if sample(id) != sample(bytes.Clone(id)) {
			t.Fatal("the same id sampled differently")
		}
		if sample(id) < 2500 { // 25%
			in++
		}
	}
	if in < 2200 || in > 2800 {
		t.Errorf("%d of 10000 ids under a 25%% threshold, want about 2500", in)
	}
}

func TestNormaliseDecodesCompressedBodies(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(`{"sku":"A"}`))
	_ = zw.Close()
	a, err := normalise(&routeShadow{}, "new", 200, nil, "gzip", buf.Bytes())
	if err != nil || string(a.body) != `{"sku":"A"}` {
		t.Errorf("normalise(gzip) = %q, %v; want the decoded JSON", a.body, err)
	}
	if _, err := normalise(&routeShadow{}, "new", 200, nil, "gzip", []byte("not gzip")); err == nil {
		t.Error("a body that does not decode must be an error, not a comparison of garbage")
	}
}
