package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// startProxy serves a bare proxy to upstream on a loopback port and returns
// its base URL.
func startProxy(t *testing.T, upstream string) string {
	t.Helper()
	base, err := parseUpstream(upstream)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := newApp(base, newClient(8), false)
	done := make(chan error, 1)
	go func() { done <- app.Listener(ln) }()
	t.Cleanup(func() {
		_ = app.ShutdownWithTimeout(5 * time.Second)
		<-done
	})
	return "http://" + ln.Addr().String()
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func TestBareProxyForwardsPathQueryAndBody(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Seen", r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-User-Id"))
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(append([]byte(`{"echo":"`), append(b, `"}`...)...))
	}))
	t.Cleanup(up.Close)
	proxyURL := startProxy(t, up.URL)

	for _, tc := range []struct {
		name, method, path, body, wantSeen, wantBody string
	}{
		{"get with query", "GET", "/api/v1/products/BENCH-0001?x=1", "", "GET /api/v1/products/BENCH-0001?x=1 user-7", `{"echo":""}`},
		{"post with body", "POST", "/api/v1/orders", "abc", "POST /api/v1/orders user-7", `{"echo":"abc"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tc.method, proxyURL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-User-Id", "user-7")
			resp, err := httpClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d, want the upstream's 201", resp.StatusCode)
			}
			if got := resp.Header.Get("X-Seen"); got != tc.wantSeen {
				t.Fatalf("upstream saw %q, want %q", got, tc.wantSeen)
			}
			if string(b) != tc.wantBody {
				t.Fatalf("body %q, want %q", b, tc.wantBody)
			}
		})
	}
}

func TestBareProxyAnswers502WhenTheUpstreamIsDown(t *testing.T) {
	t.Parallel()
	// A port that was free a moment ago: nothing listens there now.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	_ = ln.Close()
	proxyURL := startProxy(t, dead)

	resp, err := httpClient.Get(proxyURL + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if strings.Contains(string(b), "127.0.0.1") {
		t.Fatalf("the error leaks the upstream address: %q", b)
	}
}

func TestParseUpstream(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"http://127.0.0.1:9000", "http://127.0.0.1:9000", true},
		{"http://127.0.0.1:9000/", "http://127.0.0.1:9000", true},
		{"", "", false},
		{"127.0.0.1:9000", "", false},
		{"https://127.0.0.1:9000", "", false},
		{"http://127.0.0.1:9000/api", "", false},
		{"http://127.0.0.1:9000?x=1", "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseUpstream(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("parseUpstream(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}
