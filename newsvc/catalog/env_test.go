package catalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/newsvc/catalog"
	"github.com/ficus-gw/ficus/newsvc/outbox"
)

// waitLimit bounds waits against a hung test; it never orders events.
const waitLimit = 15 * time.Second

// clock is an injected clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is a Catalog served on a loopback port, plus a client that checks
// every response against openapi.yaml.
type env struct {
	t      testing.TB
	svc    *catalog.Service
	base   string
	client *http.Client
	router routers.Router
	doc    *openapi3.T
	clock  *clock
	dbPath string
}

type tbWriter struct{ t testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newEnv starts a catalog; edit adjusts its config (the clock is already
// injected and rate limiting is off unless edit turns it on).
func newEnv(t testing.TB, edit func(*catalog.Config)) *env {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(catalog.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is invalid: %v", err)
	}
	clk := newClock()
	cfg := catalog.Config{
		DBPath:    filepath.Join(t.TempDir(), "catalog.db"),
		Now:       clk.Now,
		RateLimit: -1,
	}
	if edit != nil {
		edit(&cfg)
	}
	log := slog.New(slog.NewTextHandler(tbWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := catalog.Open(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = svc.Close()
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	doc.Servers = openapi3.Servers{{URL: base}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		_ = ln.Close()
		_ = svc.Close()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- svc.App().Listener(ln) }()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	t.Cleanup(func() {
		if err := svc.App().ShutdownWithTimeout(waitLimit); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		_ = ln.Close() // in case Shutdown ran before the server started
		select {
		case <-served:
		case <-time.After(waitLimit):
			t.Error("server did not stop")
		}
		cancel()
		select {
		case err := <-ran:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitLimit):
			t.Error("Run did not return")
		}
		if err := svc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	return &env{
		t: t, svc: svc, base: base, router: router, doc: doc, clock: clk, dbPath: cfg.DBPath,
		client: &http.Client{Timeout: waitLimit, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}
}

// resp is a received response whose body was checked against the contract.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// errBody decodes an error response.
func (r resp) errBody(t testing.TB) apierr.Body {
	t.Helper()
	var b apierr.Body
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("not an error body: %s", r.body)
	}
	return b
}

// decode unmarshals the body into v.
func (r resp) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// do sends a request. body may be nil, a string/[]byte sent as is, or any
// other value sent as JSON. Content-Type defaults to application/json when
// there is a body. Safe for concurrent use; it reports with t.Errorf so it
// may run in goroutines (the caller checks t.Failed or the status).
func (e *env) do(method, path string, body any, header map[string]string) resp {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Errorf("encoding request: %v", err)
			return resp{}
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Errorf("building request: %v", err)
		return resp{}
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	hr, err := e.client.Do(req)
	if err != nil {
		e.t.Errorf("%s %s: %v", method, path, err)
		return resp{}
	}
	defer hr.Body.Close()
	raw, err := io.ReadAll(hr.Body)
	if err != nil {
		e.t.Errorf("%s %s: reading body: %v", method, path, err)
	}
	r := resp{status: hr.StatusCode, header: hr.Header, body: raw}
	if err := e.validate(req, r); err != nil {
		e.t.Errorf("%s %s answered %d outside the contract: %v\nbody: %.500s", method, path, r.status, err, raw)
	}
	return r
}

// validate checks r against openapi.yaml. Responses to requests that match
// no operation (unknown paths, methods) must still be Error documents.
func (e *env) validate(req *http.Request, r resp) error {
	// Validation reads only the request line and headers.
	vreq := req.Clone(context.Background())
	vreq.Body = http.NoBody
	// Bodies over the limit are refused by the HTTP server before any
	// middleware runs, so they carry no request id.
	if r.header.Get(apierr.RequestIDHeader) == "" && r.status != http.StatusRequestEntityTooLarge {
		return fmt.Errorf("no %s header", apierr.RequestIDHeader)
	}
	route, params, err := e.router.FindRoute(vreq)
	if err != nil {
		if r.status < 400 {
			return fmt.Errorf("status %d for a request outside the contract (%v)", r.status, err)
		}
		var v any
		if err := json.Unmarshal(r.body, &v); err != nil {
			return fmt.Errorf("error body is not JSON: %w", err)
		}
		return e.doc.Components.Schemas["Error"].Value.VisitJSON(v)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts},
		Status:                 r.status,
		Header:                 r.header,
		Options:                opts,
	}
	in.SetBodyBytes(r.body)
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// product is a PUT body.
func product(name, category string, priceMinor, stock int64) map[string]any {
	return map[string]any{
		"name": name, "description": "A " + name, "category": category,
		"price": map[string]any{"amountMinor": priceMinor, "currency": "EUR"},
		"stock": stock,
	}
}

// put creates or replaces sku and fails the test unless it succeeded.
func (e *env) put(sku string, body map[string]any) catalog.Product {
	e.t.Helper()
	r := e.do(http.MethodPut, "/api/v1/products/"+sku, body, nil)
	if r.status != http.StatusOK && r.status != http.StatusCreated {
		e.t.Fatalf("PUT %s: %s", sku, r)
	}
	var p catalog.Product
	r.decode(e.t, &p)
	return p
}

// events returns the whole pull feed (through the HTTP API).
func (e *env) events() []outbox.Stored {
	e.t.Helper()
	var all []outbox.Stored
	after := int64(0)
	for range 1000 {
		r := e.do(http.MethodGet, fmt.Sprintf("/api/v1/events?after=%d&limit=1000", after), nil, nil)
		if r.status != http.StatusOK {
			e.t.Fatalf("events: %s", r)
		}
		var page outbox.Page
		r.decode(e.t, &page)
		if len(page.Events) == 0 {
			return all
		}
		all = append(all, page.Events...)
		after = page.Next
	}
	e.t.Fatal("event feed does not end")
	return nil
}

func eventsOfType(events []outbox.Stored, typ string) []outbox.Stored {
	var out []outbox.Stored
	for _, e := range events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}
