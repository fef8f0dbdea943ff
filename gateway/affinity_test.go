package gateway

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/ficus-gw/ficus/gateway/intent"
	"github.com/ficus-gw/ficus/internal/pgtest"
	"github.com/gofiber/fiber/v2"
)

// flipDecider sends every request to the side it currently holds: a canary
// that an operator moves between two attempts.
type flipDecider struct{ toNew atomic.Bool }

func (d *flipDecider) Decide(*fiber.Ctx, int, string) decide.Decision {
	if d.toNew.Load() {
		return decide.Decision{Backend: decide.New, Reason: decide.ReasonCanary}
	}
	return decide.Decision{Backend: decide.Legacy, Reason: decide.ReasonCanary}
}

func affinityConfig(t *testing.T, legacyURL, newURL string) *config.Config {
	return testConfig(t, map[string]string{"legacy": legacyURL, "orders": newURL}, []config.Route{{
		Name: "orders", Path: "/api/v1/orders/*", New: "orders", BufferResponses: true,
		Affinity: &config.WriteAffinity{},
	}}, nil)
}

func openLedger(t *testing.T, path string) *intent.SQLite {
	t.Helper()
	l, err := intent.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func post(t *testing.T, r *running, key string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.url+"/api/v1/orders", strings.NewReader(`{}`))
	req.Header.Set("Idempotency-Key", key)
	return r.do(t, req)
}

// Two replicas share one ledger; the canary moves between the attempts and
// each replica sees it at a different moment: every attempt of a key still
// goes to one side. On one host they share the SQLite file; in a fleet, the
// PostgreSQL database.
func TestAffinityHoldsAcrossReplicasAndCanaryMoves(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "intents.db")
		affinityAcrossReplicas(t, func() intent.Ledger { return openLedger(t, path) })
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		srv := pgtest.New(t)
		affinityAcrossReplicas(t, func() intent.Ledger {
			l, err := intent.OpenPostgres(context.Background(), srv.Pool(t, "fleet"))
			if err != nil {
				t.Fatal(err)
			}
			return l
		})
	})
}

func affinityAcrossReplicas(t *testing.T, ledger func() intent.Ledger) {
	legacy := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(201) })
	newSide := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(201) })
	cfg := affinityConfig(t, legacy.URL, newSide.URL)
	da, db := &flipDecider{}, &flipDecider{}
	a := start(t, cfg, func(o *Options) { o.Intents = ledger(); o.Decider = da })
	b := start(t, cfg, func(o *Options) { o.Intents = ledger(); o.Decider = db })

	da.toNew.Store(true) // replica a already sees canary 100, b still 0
	if res, _ := post(t, a, "k1"); res.StatusCode != 201 || res.Header.Get(HeaderBackend) != "new" {
		t.Fatalf("first attempt via a: %d from %s", res.StatusCode, res.Header.Get(HeaderBackend))
	}
	if res, _ := post(t, b, "k1"); res.Header.Get(HeaderBackend) != "new" {
		t.Fatalf("retry via b (canary 0 there) went to %s", res.Header.Get(HeaderBackend))
	}
	if got := b.counter(t, MetricDecisions, "route", "orders", "backend", "new", "reason", "affinity"); got != 1 {
		t.Fatalf("affinity decisions on b = %v, want 1", got)
	}
	db.toNew.Store(true)
	da.toNew.Store(false)
	if res, _ := post(t, b, "k2"); res.Header.Get(HeaderBackend) != "new" {
		t.Fatal("k2 first attempt not on new")
	}
	if res, _ := post(t, a, "k2"); res.Header.Get(HeaderBackend) != "new" {
		t.Fatalf("k2 retry via a (canary back to 0) went to %s", res.Header.Get(HeaderBackend))
	}
	if legacy.hits.Load() != 0 || newSide.hits.Load() != 4 {
		t.Fatalf("legacy saw %d writes, new %d; want 0 and 4", legacy.hits.Load(), newSide.hits.Load())
	}
	// Reads are never bound.
	if res, _ := a.get(t, "/api/v1/orders/x"); res.Header.Get(HeaderBackend) != "legacy" {
		t.Fatal("a read was bound to a side")
	}
}

// A key whose first attempt could not even connect to the new side falls
// back to the legacy and stays there; a key whose first attempt may have
// arrived is refused while its side is down.
func TestAffinityFallsBackOnlyWhenProvablyUnsent(t *testing.T) {
	t.Parallel()
	legacy := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(201) })
	dead := deadURL(t)
	cfg := affinityConfig(t, legacy.URL, dead)
	d := &flipDecider{}
	d.toNew.Store(true)
	r := start(t, cfg, func(o *Options) { o.Intents = openLedger(t, filepath.Join(t.TempDir(), "i.db")); o.Decider = d })
	res, _ := post(t, r, "down-first")
	if res.StatusCode != 201 || res.Header.Get(HeaderBackend) != "legacy" || res.Header.Get(HeaderFallback) != "connect" {
		t.Fatalf("first attempt with new down: %d from %s (fallback %q)", res.StatusCode, res.Header.Get(HeaderBackend), res.Header.Get(HeaderFallback))
	}
	if got := r.counter(t, MetricIntents, "route", "orders", "result", "moved"); got != 1 {
		t.Fatalf("moved = %v", got)
	}
	// It stays on legacy for good.
	if res, _ := post(t, r, "down-first"); res.Header.Get(HeaderBackend) != "legacy" {
		t.Fatal("retry left the legacy")
	}
}

func TestAffinityRefusesWhileTheBoundSideIsDown(t *testing.T) {
	t.Parallel()
	legacy := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(201) })
	var down atomic.Bool
	newSide := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		if down.Load() {
			// The connection is cut after the request arrived: it may
			// have been booked.
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			_ = c.Close()
			return
		}
		w.WriteHeader(201)
	})
	cfg := affinityConfig(t, legacy.URL, newSide.URL)
	d := &flipDecider{}
	d.toNew.Store(true)
	r := start(t, cfg, func(o *Options) { o.Intents = openLedger(t, filepath.Join(t.TempDir(), "i.db")); o.Decider = d })
	down.Store(true)
	if res, _ := post(t, r, "k"); res.StatusCode != 502 {
		t.Fatalf("attempt cut after sending: %d", res.StatusCode)
	}
	newSide.Close() // now refuse connections: provably not sent, but the first attempt may have arrived
	res, body := post(t, r, "k")
	if res.StatusCode != 503 || !strings.Contains(string(body), CodeIntentPending) || res.Header.Get("Retry-After") == "" {
		t.Fatalf("retry while the bound side is down: %d %s", res.StatusCode, body)
	}
	if legacy.hits.Load() != 0 {
		t.Fatal("the legacy booked a key the new side may hold")
	}
}

func TestAffinityLedgerDownIsARetryable503(t *testing.T) {
	t.Parallel()
	legacy := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(201) })
	newSide := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(201) })
	cfg := affinityConfig(t, legacy.URL, newSide.URL)
	l, err := intent.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "i.db"))
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, cfg, func(o *Options) { o.Intents = l })
	_ = l.Close()
	res, body := post(t, r, "k")
	if res.StatusCode != 503 || !strings.Contains(string(body), CodeIntentLedger) {
		t.Fatalf("ledger down: %d %s", res.StatusCode, body)
	}
	if legacy.hits.Load()+newSide.hits.Load() != 0 {
		t.Fatal("a write went out although its side could not be looked up")
	}
	// Writes without a key and reads are not affected.
	req, _ := http.NewRequest(http.MethodPost, r.url+"/api/v1/orders", strings.NewReader(`{}`))
	if res, _ := r.do(t, req); res.StatusCode != 201 {
		t.Fatalf("keyless write: %d", res.StatusCode)
	}
}
