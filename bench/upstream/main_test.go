package main

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// serve runs h on an in-memory listener and returns a client bound to it.
func serve(t *testing.T, h fasthttp.RequestHandler) *fasthttp.Client {
	t.Helper()
	ln := fasthttputil.NewInmemoryListener()
	srv := newServer(h)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return &fasthttp.Client{
		Dial:         func(string) (net.Conn, error) { return ln.Dial() },
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 5 * time.Second,
	}
}

func TestUpstreamAnswersEveryPathWithTheSameJSON(t *testing.T) {
	t.Parallel()
	body := productJSON(1024)
	cli := serve(t, newHandler(body, 0, func(time.Duration) { t.Error("waited without -sleep") }))
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/products/BENCH-0001"},
		{"GET", "/"},
		{"POST", "/anything?x=1"},
		{"HEAD", "/api/v1/products/BENCH-0001"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.SetMethod(tc.method)
			req.SetRequestURI("http://upstream" + tc.path)
			if err := cli.Do(req, resp); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode() != 200 {
				t.Fatalf("status %d", resp.StatusCode())
			}
			if ct := string(resp.Header.ContentType()); ct != "application/json" {
				t.Fatalf("content type %q", ct)
			}
			if tc.method == "HEAD" {
				if len(resp.Body()) != 0 || resp.Header.ContentLength() != len(body) {
					t.Fatalf("HEAD: body %d bytes, Content-Length %d, want 0 and %d", len(resp.Body()), resp.Header.ContentLength(), len(body))
				}
				return
			}
			if string(resp.Body()) != string(body) {
				t.Fatalf("body differs from the configured document")
			}
		})
	}
}

func TestProductJSONIsValidAndSized(t *testing.T) {
	t.Parallel()
	for _, size := range []int{64, 1024, 4096} {
		b := productJSON(size)
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("size %d: not JSON: %v", size, err)
		}
		if doc["sku"] != "BENCH-0001" {
			t.Fatalf("size %d: sku %v", size, doc["sku"])
		}
		if size >= 256 && len(b) != size {
			t.Fatalf("size %d: got %d bytes", size, len(b))
		}
	}
}

func TestSleepDelaysEveryAnswer(t *testing.T) {
	t.Parallel()
	waited := make(chan time.Duration, 1)
	cli := serve(t, newHandler(productJSON(256), 5*time.Second, func(d time.Duration) { waited <- d }))
	status, _, err := cli.Get(nil, "http://upstream/slow")
	if err != nil {
		t.Fatal(err)
	}
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	select {
	case d := <-waited:
		if d != 5*time.Second {
			t.Fatalf("waited %s, want the -sleep value 5s", d)
		}
	default:
		t.Fatal("the answer came without waiting")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-size", "10"},
		{"-sleep", "-1s"},
		{"-listen", "0.0.0.0:0"},
	} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) accepted bad flags", args)
		}
	}
}
