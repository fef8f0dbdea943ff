package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/admin"
	"github.com/ficus-gw/ficus/gateway/controlplane"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/ficus-gw/ficus/internal/pgdb"
	"github.com/ficus-gw/ficus/internal/pgtest"
)

const fleetToken = "fleet-operator-token-0123456789"

// fleet is N gateway replicas in this process sharing one PostgreSQL.
type fleet struct {
	t        *testing.T
	pg       *pgtest.Server
	legacy   *httptest.Server
	newSide  *httptest.Server
	dir      string
	replicas []*fleetReplica
}

type fleetReplica struct {
	*replica
	g        *group
	client   *admin.Client
	stopOnce sync.Once
}

func side(name string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Served-By", name)
		_, _ = io.WriteString(w, name)
	}))
}

func newFleet(t *testing.T, n int) *fleet {
	pg := pgtest.New(t)
	f := &fleet{t: t, pg: pg, legacy: side("legacy"), newSide: side("new"), dir: t.TempDir()}
	t.Cleanup(f.legacy.Close)
	t.Cleanup(f.newSide.Close)
	for i := range n {
		f.replicas = append(f.replicas, f.start(i))
	}
	t.Cleanup(func() {
		for _, r := range f.replicas {
			if r != nil {
				r.stop()
			}
		}
	})
	return f
}

func (f *fleet) config(i int) *config.Config {
	f.t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
admin:
  tokens: [{name: operator, value: %q, scopes: [read, write]}]
upstreams:
  legacy: {url: %q}
  catalog: {url: %q, kind: new}
routes:
  - {name: products, path: /api/v1/products/*, new: catalog, canary: 10}
controlPlane:
  postgres: {dsn: %q, cache: %q}
shadow: {db: %q}
retire: {db: %q}
`, fleetToken, f.legacy.URL, f.newSide.URL, f.pg.DSN("postgres"), filepath.Join(f.dir, fmt.Sprintf("cp-cache-%d.json", i)),
		filepath.Join(f.dir, fmt.Sprintf("shadow-%d.db", i)), filepath.Join(f.dir, fmt.Sprintf("retire-%d.db", i)))))
	if err != nil {
		f.t.Fatal(err)
	}
	cfg.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0"
	return cfg
}

func (f *fleet) start(i int) *fleetReplica {
	f.t.Helper()
	g := newGroup(context.Background())
	env := &environment{stdout: io.Discard, stderr: testWriter{f.t, i}, logLevel: new(slog.LevelVar)}
	r, err := startGateway(g, f.config(i), env)
	if err != nil {
		g.cancel()
		_ = g.Wait()
		f.t.Fatalf("replica %d: %v", i+1, err)
	}
	c, err := admin.NewClient("http://"+r.adm, fleetToken, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	fr := &fleetReplica{replica: r, g: g, client: c}
	waitUntil(f.t, 10*time.Second, fmt.Sprintf("replica %d ready", i+1), func() bool {
		resp, err := http.Get("http://" + r.adm + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return fr
}

// stop stops the replica; once, however often it is called.
func (r *fleetReplica) stop() {
	r.stopOnce.Do(func() {
		r.g.cancel()
		_ = r.g.Wait()
	})
}

// testWriter sends a replica's log lines to the test log, warnings and
// errors only (they explain a failure; info lines would drown it).
type testWriter struct {
	t *testing.T
	i int
}

func (w testWriter) Write(p []byte) (int, error) {
	if s := string(p); strings.Contains(s, "level=WARN") || strings.Contains(s, "level=ERROR") {
		w.t.Logf("replica %d: %s", w.i+1, strings.TrimSpace(s))
	}
	return len(p), nil
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// converged reports whether every replica routes on state version v.
func (f *fleet) converged(v int64) bool {
	for _, r := range f.replicas {
		snap, _ := r.api.Syncer().Current()
		if snap.Version < v {
			return false
		}
	}
	return true
}

// decisions returns, per user id, the backend the replica's engine picks
// for the products route.
func decisions(r *fleetReplica, users int) []decide.Backend {
	app := fiber.New()
	out := make([]decide.Backend, users)
	fctx := &fasthttp.RequestCtx{}
	c := app.AcquireCtx(fctx)
	defer app.ReleaseCtx(c)
	for u := range users {
		fctx.Request.Header.Set("X-User-Id", "user-"+strconv.Itoa(u))
		out[u] = r.engine.Decide(c, 0, "req").Backend
	}
	return out
}

func (f *fleet) sameDecisions(t *testing.T, label string) {
	t.Helper()
	const users = 10_000
	want := decisions(f.replicas[0], users)
	for i, r := range f.replicas[1:] {
		got := decisions(r, users)
		for u := range users {
			if got[u] != want[u] {
				t.Fatalf("%s: user-%d goes to %v on replica 1 but %v on replica %d", label, u, want[u], got[u], i+2)
			}
		}
	}
}

func TestFleetSharesOneControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and three gateways")
	}
	f := newFleet(t, 3)
	ctx := context.Background()
	r1, r2, r3 := f.replicas[0], f.replicas[1], f.replicas[2]

	t.Run("a change through replica 1 reaches replicas 2 and 3 within 1 s", func(t *testing.T) {
		var worst time.Duration
		for _, pct := range []float64{37, 12.5, 64} {
			start := time.Now()
			res, err := r1.client.SetCanary(ctx, "products", pct, "convergence", 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []*fleetReplica{r2, r3} {
				waitUntil(t, time.Second, "convergence", func() bool {
					st, _ := r.engine.State("products")
					return st.Canary == pct
				})
			}
			d := time.Since(start)
			worst = max(worst, d)
			t.Logf("canary %v%% through replica 1 (state version %d): live on replicas 2 and 3 after %s (write included)", pct, res.StateVersion, d.Round(100*time.Microsecond))
		}
		t.Logf("CONVERGENCE: worst of 3 changes %s", worst.Round(100*time.Microsecond))
		resp, err := http.Get("http://" + r3.adm + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, m := range []string{"ficus_controlplane_state_version 3", "ficus_controlplane_connected 1", "ficus_controlplane_last_sync_timestamp_seconds", "ficus_controlplane_leader"} {
			if !strings.Contains(string(body), m) {
				t.Errorf("replica 3 metrics lack %q", m)
			}
		}
	})

	t.Run("every replica makes the same decision for 10,000 users before and after each of 20 changes", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(12, 34))
		f.sameDecisions(t, "before the changes")
		for i := range 20 {
			r := f.replicas[rng.IntN(3)]
			var res admin.ChangeResult
			var err error
			switch rng.IntN(4) {
			case 0:
				res, err = r.client.Pin(ctx, "products", []string{"legacy", "new"}[rng.IntN(2)], "random", 0)
			case 1:
				res, err = r.client.Resume(ctx, "products", "random", 0)
			default:
				res, err = r.client.SetCanary(ctx, "products", float64(rng.IntN(201))/2, "random", 0)
			}
			if err != nil {
				t.Fatal(err)
			}
			waitUntil(t, time.Second, "convergence", func() bool { return f.converged(res.StateVersion) })
			f.sameDecisions(t, fmt.Sprintf("after change %d (%s)", i+1, res.Action))
		}
		// The engines' answers are what the public listeners serve.
		if _, err := r1.client.Resume(ctx, "products", "end", 0); err != nil {
			t.Fatal(err)
		}
		res, err := r1.client.SetCanary(ctx, "products", 50, "end", 0)
		if err != nil {
			t.Fatal(err)
		}
		waitUntil(t, time.Second, "convergence", func() bool { return f.converged(res.StateVersion) })
		want := decisions(r1, 200)
		for i, r := range f.replicas {
			for u := range 200 {
				if got := serve(t, r, u); got != want[u].String() {
					t.Fatalf("replica %d served user-%d from %s; the engine decided %s", i+1, u, got, want[u])
				}
			}
		}
	})

	t.Run("two concurrent writers expecting one version: exactly one wins", func(t *testing.T) {
		routes, err := r1.client.Routes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		v := routes[0].Version
		var wins, conflicts atomic.Int64
		var wg sync.WaitGroup
		for i, r := range []*fleetReplica{r1, r2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := r.client.SetCanary(ctx, "products", float64(70+i), "race", v)
				switch {
				case err == nil:
					wins.Add(1)
				case admin.IsCode(err, admin.CodeStateConflict):
					conflicts.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != 1 {
			t.Fatalf("%d wins, %d conflicts; want exactly one of each", wins.Load(), conflicts.Load())
		}
	})

	t.Run("PostgreSQL down: no request fails, last state kept, writes 503, then converge", func(t *testing.T) {
		before, _ := r2.engine.State("products")
		var ok, failed atomic.Int64
		loadCtx, stopLoad := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Timeout: 5 * time.Second}
				for u := 0; loadCtx.Err() == nil; u++ {
					r := f.replicas[(w+u)%3]
					req, _ := http.NewRequest("GET", "http://"+r.pub+"/api/v1/products/x", nil)
					req.Header.Set("X-User-Id", "load-"+strconv.Itoa(u))
					resp, err := client.Do(req)
					if err != nil || resp.StatusCode != 200 {
						failed.Add(1)
					} else {
						ok.Add(1)
					}
					if resp != nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			}()
		}
		if err := f.pg.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		for i, r := range f.replicas {
			waitUntil(t, 10*time.Second, fmt.Sprintf("replica %d notices the outage", i+1), func() bool { return !r.api.Syncer().Connected() })
		}
		// Keep the outage up while the load makes a few hundred more requests.
		okAtStop := ok.Load()
		waitUntil(t, 20*time.Second, "load during the outage", func() bool { return ok.Load() >= okAtStop+300 || failed.Load() > 0 })
		_, err := r2.client.SetCanary(ctx, "products", 99, "during the outage", 0)
		var ae *admin.APIError
		if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != admin.CodeControlPlaneUnavailable || !strings.Contains(ae.Message, "postgres") {
			t.Fatalf("write during the outage: %v; want 503 %s naming postgres", err, admin.CodeControlPlaneUnavailable)
		}
		for i, r := range f.replicas {
			if st, _ := r.engine.State("products"); st.Canary != before.Canary || st.Pinned != before.Pinned {
				t.Fatalf("replica %d fell back to %+v during the outage; want the last known %+v", i+1, st, before)
			}
			resp, err := http.Get("http://" + r.adm + "/readyz")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("replica %d not ready during the outage: %v", i+1, err)
			}
			resp.Body.Close()
		}
		stopLoad()
		wg.Wait()
		t.Logf("load during the outage: %d requests ok, %d failed", ok.Load(), failed.Load())
		if failed.Load() != 0 || ok.Load() == 0 {
			t.Fatalf("%d requests failed (%d ok) while the control plane was down", failed.Load(), ok.Load())
		}
		// A replica restarted during the outage starts on its cached copy
		// of the last state: it routes as the fleet does, not on the
		// configuration's canary.
		f.replicas[2].stop()
		f.replicas[2] = f.start(2)
		if st, _ := f.replicas[2].engine.State("products"); st.Canary != before.Canary || st.Pinned != before.Pinned {
			t.Fatalf("replica 3 restarted during the outage routes on %+v; want the last known %+v", st, before)
		}
		f.sameDecisions(t, "a replica restarted during the outage")
		if err := f.pg.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		for i, r := range f.replicas {
			waitUntil(t, 15*time.Second, fmt.Sprintf("replica %d reconnects", i+1), func() bool { return r.api.Syncer().Connected() })
		}
		res, err := r2.client.SetCanary(ctx, "products", 5, "after the outage", 0)
		if err != nil {
			t.Fatal(err)
		}
		d := waitUntil(t, time.Second, "convergence after the outage", func() bool { return f.converged(res.StateVersion) })
		t.Logf("after the outage: change through replica 2 live everywhere in %s", d.Round(100*time.Microsecond))
	})

	t.Run("one leader; a restarted replica restores typed state with an in-progress rollout", func(t *testing.T) {
		leaders := func() []int {
			var out []int
			for i, r := range f.replicas {
				if r.cp.leader.IsLeader() {
					out = append(out, i)
				}
			}
			return out
		}
		waitUntil(t, 10*time.Second, "exactly one leader", func() bool { return len(leaders()) == 1 })
		lead := leaders()[0]

		// The autopilot's write: a rollout mid-step.
		pool, err := pgdb.Open(ctx, f.pg.DSN("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		store, err := controlplane.OpenPostgres(ctx, controlplane.PostgresOptions{Pool: pool})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		started := time.Now().UTC().Truncate(time.Millisecond)
		pct, pin := 25.0, controlplane.PinLegacy
		ro := &controlplane.Rollout{Schema: 1, Phase: "canary", Step: 2, StepStartedAt: started}
		res, err := store.Apply(ctx, controlplane.Change{Route: "products", Set: controlplane.Patch{Canary: &pct, Pin: &pin, CohortPercent: &pct, Rollout: ro}, Actor: "autopilot", Reason: "step 3 of 5"})
		if err != nil {
			t.Fatal(err)
		}
		waitUntil(t, time.Second, "convergence", func() bool { return f.converged(res.Version) })

		f.replicas[lead].stop()
		f.replicas[lead] = nil
		rest := []*fleetReplica{}
		for _, r := range f.replicas {
			if r != nil {
				rest = append(rest, r)
			}
		}
		waitUntil(t, 10*time.Second, "another replica takes the lead", func() bool {
			n := 0
			for _, r := range rest {
				if r.cp.leader.IsLeader() {
					n++
				}
			}
			return n == 1
		})
		fresh := f.start(lead)
		f.replicas[lead] = fresh
		st, _ := fresh.engine.State("products")
		if st.Canary != 25 || st.Pinned != "legacy" {
			t.Fatalf("restarted replica routes on %+v; want canary 25 pinned to legacy", st)
		}
		v, err := fresh.client.Route(ctx, "products")
		if err != nil {
			t.Fatal(err)
		}
		if v.Rollout == nil || !v.Rollout.Equal(ro) || v.CohortPercent == nil || *v.CohortPercent != 25 || v.CanarySource != admin.SourceControlPlane || v.Version != res.Version {
			t.Fatalf("restarted replica shows %+v (rollout %+v); want the rollout record at step 2", v, v.Rollout)
		}
		if fresh.cp.leader.IsLeader() && len(leaders()) != 1 {
			t.Fatalf("two leaders after the restart: %v", leaders())
		}
	})
}

// serve asks replica r's public listener for the products route as user u
// and returns which side answered.
func serve(t *testing.T, r *fleetReplica, u int) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+r.pub+"/api/v1/products/x", nil)
	req.Header.Set("X-User-Id", "user-"+strconv.Itoa(u))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Header.Get("X-Served-By")
}
