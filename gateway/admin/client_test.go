package admin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/gateway/decide"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClientAgainstLoopbackServer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	base := serve(t, f.app)
	ctx := testCtx(t)
	c, err := NewClient(base, operatorToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := c.Routes(ctx)
	if err != nil || len(routes) != 3 || routes[0].CanaryPercent != 25 {
		t.Fatalf("Routes: %+v, %v", routes, err)
	}
	res, err := c.SetCanary(ctx, "products", 40, "ramp to 40", 0)
	if err != nil || len(res.Audit) != 1 || string(res.Audit[0].Old) != "25" || string(res.Audit[0].New) != "40" || res.Route.CanaryPercent != 40 {
		t.Fatalf("SetCanary: %+v, %v", res, err)
	}
	if _, err := c.Pin(ctx, "products", "legacy", "incident 7", 0); err != nil {
		t.Fatalf("Pin: %v", err)
	}
	r, err := c.Route(ctx, "products")
	if err != nil || r.Pinned != "legacy" {
		t.Fatalf("Route after pin: %+v, %v", r, err)
	}
	if _, err := c.Resume(ctx, "products", "incident 7 over", 0); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	entries, err := c.Audit(ctx, "products", 2)
	if err != nil || len(entries) != 2 || string(entries[0].New) != `""` || string(entries[1].New) != `"legacy"` {
		t.Fatalf("Audit(products, 2): %+v, %v", entries, err)
	}

	var out bytes.Buffer
	st, err := c.Status(ctx)
	if err != nil || st.StateVersion != 3 || !st.Connected || st.Store != "control plane" {
		t.Fatalf("Status: %+v, %v", st, err)
	}
	if err := RenderRoutes(&out, routes, &st); err != nil {
		t.Fatal(err)
	}
	table := out.String()
	for _, want := range []string{"ROUTE", "products", "25%", "catalog [half-open] 4.0 rps, 0.00 err/s", "legacy [closed] 12.0 rps, 0.50 err/s", "old-shop", "state version 3", "config"} {
		if !strings.Contains(table, want) {
			t.Errorf("routes table lacks %q:\n%s", want, table)
		}
	}
	out.Reset()
	if err := RenderAudit(&out, entries); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "alice") || !strings.Contains(s, `"legacy"`) || !strings.Contains(s, "incident 7 over") {
		t.Errorf("audit table:\n%s", s)
	}
	out.Reset()
	if err := RenderChange(&out, res); err != nil || !strings.Contains(out.String(), "canary products: canaryPercent 25 -> 40") {
		t.Errorf("change line %q, %v", out.String(), err)
	}
}

func TestClientErrorsSayWhatToDoNext(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	base := serve(t, f.app)
	ctx := testCtx(t)
	op, _ := NewClient(base, operatorToken, nil)
	viewer, _ := NewClient(base, viewerToken, nil)
	stranger, _ := NewClient(base, "not-a-token", nil)
	// A port that nothing listens on: take one and close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	_ = ln.Close()
	dead, _ := NewClient("http://"+deadAddr, operatorToken, &http.Client{Timeout: 5 * time.Second})
	tests := []struct {
		name string
		call func() error
		code string
		hint string
	}{
		{"bad token", func() error { _, err := stranger.Routes(ctx); return err }, CodeUnauthorized, "admin.tokens"},
		{"read-only token", func() error { _, err := viewer.SetCanary(ctx, "products", 5, "x", 0); return err }, CodeForbidden, "scopes"},
		{"no reason", func() error { _, err := op.SetCanary(ctx, "products", 5, "", 0); return err }, CodeReasonRequired, "--reason"},
		{"unknown route", func() error { _, err := op.Pin(ctx, "nope", "new", "x", 0); return err }, CodeNotFound, "ficus ctl routes"},
		{"bad percent", func() error { _, err := op.SetCanary(ctx, "products", 250, "x", 0); return err }, CodeInvalidPercent, "between 0 and 100"},
		{"gateway down", func() error { _, err := dead.Routes(ctx); return err }, "", "is the gateway running"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatal("no error")
			}
			if tc.code != "" && !IsCode(err, tc.code) {
				t.Fatalf("error %v, want code %s", err, tc.code)
			}
			if !strings.Contains(err.Error(), tc.hint) {
				t.Fatalf("error %q does not say what to do next (%q)", err, tc.hint)
			}
		})
	}
	if _, err := NewClient("127.0.0.1:8090", "x", nil); err == nil {
		t.Fatal("NewClient accepted a URL without a scheme")
	}
}

// TestCanaryChangesUnderLoadFailNothing runs a stand-in gateway that calls
// Decide on every request while an operator ramps the canary through the
// client: no request and no change may fail, and every change is audited.
func TestCanaryChangesUnderLoadFailNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	adminBase := serve(t, f.app)
	gw := fiber.New(fiber.Config{DisableStartupMessage: true})
	route := 0 // products
	gw.Get("/*", func(c *fiber.Ctx) error {
		d := f.engine.Decide(c, route, c.Get("X-Request-Id"))
		return c.SendString(d.Backend.String())
	})
	gwBase := serve(t, gw)
	ctx := testCtx(t)

	stop := make(chan struct{})
	type tally struct{ ok, failed int }
	results := make(chan tally, 4)
	var load sync.WaitGroup
	for w := range 4 {
		load.Go(func() {
			hc := &http.Client{Timeout: 10 * time.Second}
			var tl tally
			defer func() { results <- tl }()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequestWithContext(ctx, "GET", gwBase+"/api/v1/products/1", nil)
				req.Header.Set("X-User-Id", fmt.Sprintf("w%d-u%d", w, i%300))
				resp, err := hc.Do(req)
				if err != nil {
					tl.failed++
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if _, known := decide.ParseBackend(string(b)); resp.StatusCode != 200 || !known {
					tl.failed++
					continue
				}
				tl.ok++
			}
		})
	}
	op, _ := NewClient(adminBase, operatorToken, nil)
	steps := []float64{1, 5, 10, 25, 50, 75, 100, 50, 0, 100}
	for _, p := range steps {
		if _, err := op.SetCanary(ctx, "products", p, fmt.Sprintf("ramp to %v", p), 0); err != nil {
			close(stop)
			load.Wait()
			t.Fatalf("SetCanary %v under load: %v", p, err)
		}
	}
	close(stop)
	load.Wait()
	close(results)
	var total tally
	for r := range results {
		total.ok += r.ok
		total.failed += r.failed
	}
	if total.failed != 0 || total.ok == 0 {
		t.Fatalf("%d requests failed, %d succeeded during the ramp", total.failed, total.ok)
	}
	entries, err := op.Audit(ctx, "products", 100)
	if err != nil || len(entries) != len(steps) {
		t.Fatalf("audit has %d entries (%v), want %d", len(entries), err, len(steps))
	}
	for i, e := range entries { // newest first
		want := steps[len(steps)-1-i]
		if string(e.New) != fmt.Sprint(want) {
			t.Fatalf("audit entry %d: new %s, want %v", i, e.New, want)
		}
	}
	if st, _ := f.engine.State("products"); st.Canary != 100 {
		t.Fatalf("final canary %v", st.Canary)
	}
}
