package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/internal/metricstest"
	"github.com/prometheus/client_golang/prometheus"
)

// upstream is a real loopback HTTP server that counts the requests it saw.
type upstream struct {
	*httptest.Server
	hits atomic.Int64
	last atomic.Pointer[http.Request]
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.last.Store(r.Clone(context.Background()))
		h(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

// deadURL is an address nobody listens on: a listener bound then closed.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// testConfig returns a validated config whose upstreams are the given URLs.
func testConfig(t *testing.T, ups map[string]string, routes []config.Route, edit func(*config.Config)) *config.Config {
	t.Helper()
	c := &config.Config{
		Listen:    "127.0.0.1:18080",
		Admin:     config.Admin{Listen: "127.0.0.1:18090"},
		Upstreams: map[string]config.Upstream{},
		Routes:    routes,
	}
	for name, u := range ups {
		kind := "new"
		if name == "legacy" {
			kind = "legacy"
		}
		c.Upstreams[name] = config.Upstream{URL: u, Kind: kind}
	}
	if edit != nil {
		edit(c)
	}
	c.ApplyDefaults()
	if edit != nil { // edits of defaulted fields (e.g. breaker settings) win
		edit(c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// running is a gateway serving on loopback.
type running struct {
	gw      *Gateway
	reg     *prometheus.Registry
	url     string // public base URL
	addr    string // public host:port
	admin   string // admin base URL
	cancel  context.CancelFunc
	served  chan error
	clients *http.Client
}

func start(t *testing.T, cfg *config.Config, mod func(*Options)) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts := Options{Config: cfg, Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if mod != nil {
		mod(&opts)
	}
	gw, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{
		gw: gw, reg: reg, url: "http://" + pub.Addr().String(), addr: pub.Addr().String(),
		admin: "http://" + adm.Addr().String(), cancel: cancel, served: make(chan error, 1),
		clients: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}},
	}
	go func() { r.served <- gw.Serve(ctx, pub, adm) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.served:
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	r.waitReady(t)
	return r
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// waitReady polls /readyz until it answers 200 (bounded).
func (r *running) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := r.clients.Get(r.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation: the loop re-checks state
	}
	t.Fatal("gateway never became ready")
}

func (r *running) do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := r.clients.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func (r *running) get(t *testing.T, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return r.do(t, req)
}

// counter reads one series of the gateway's registry (see metricstest.Value).
func (r *running) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	return metricstest.Value(t, r.reg, name, labels...)
}
