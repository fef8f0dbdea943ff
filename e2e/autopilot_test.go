package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/gateway/admin"
	"github.com/ficus-gw/ficus/gateway/rollout"
	"github.com/ficus-gw/ficus/internal/metricstest"
)

// pilot is the migration on loopback with the autopilot driving `products`:
// legacy, catalog (with fault injection on its own loopback admin port),
// orders with the dual-run sync (which backfills the catalog), the ACL
// backend and the gateway, each its own process.
type pilot struct {
	t          *testing.T
	dir        string
	gateway    *proc
	cfgPath    string
	publicURL  string
	adminURL   string
	catalogURL string
	faultsURL  string
	client     *admin.Client
	http       *http.Client
	cfgArgs    []any
}

// pilotInterval is the plans' evaluation interval (and the autopilot's
// tick) in these drills.
const pilotInterval = time.Second

// versionRule is the owned, expiring ignore rule that decides the seeded
// `version` difference (each store counts its own changes).
const versionRule = `
          - {path: /version, owner: catalog-team, reason: "each store counts its own changes (CAT-31)", expires: "2027-06-30"}`

const pilotConfig = `listen: %s
admin:
  listen: %s
  auditDB: %s
  tokens:
    - {name: e2e, value: %s, scopes: [read, write]}
upstreams:
  legacy: {url: %s, kind: legacy}
  catalog: {url: %s, kind: new, timeout: 3s}
  acl: {url: %s, kind: acl, timeout: 5s}
autopilot:
  tick: %s
routes:
  - name: products
    path: /api/v1/products/*
    methods: [GET, HEAD]
    legacy: acl
    new: catalog
    bufferResponses: true
    shadow:
      percent: 100
      noise: true
      compare:
        arrayKeys: {/items: sku}
        ignore:
          - {path: /updatedAt, owner: catalog-team, reason: each store stamps its own write time, expires: "2027-06-30"}
          - {path: /items/*/updatedAt, owner: catalog-team, reason: each store stamps its own write time, expires: "2027-06-30"}%s
    rollout:
      interval: %s
      steps:
        - {percent: 5, minDuration: 2s, minRequests: 20}
        - {percent: 25, minDuration: %s, minRequests: 50}
        - {percent: 100, minDuration: 2s, minRequests: 50}
      gates:
        shadow: {minCompared: 50, minDuration: 1s, maxRealDiffRate: 0.02}
        errors: {minRequests: 50}
        latency: {minRequests: 50}
        resilience: {minRequests: 20}
shadow: {db: %s}
retire: {db: %s}
`

// startPilot starts every process. withRule puts the version ignore rule
// in the gateway's configuration; hold25 is the 25% step's minimum duration.
func startPilot(t *testing.T, withRule bool, hold25 time.Duration) *pilot {
	t.Helper()
	dir := t.TempDir()
	p := &pilot{t: t, dir: dir, http: &http.Client{Timeout: 10 * time.Second}}
	la, ca, fa, oa, aa := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	legacyURL, aclURL := "http://"+la, "http://"+aa
	p.catalogURL, p.faultsURL = "http://"+ca, "http://"+fa
	newProc := func(name, probe string, args ...string) *proc {
		return &proc{t: t, name: name, args: args, probe: probe, log: filepath.Join(dir, name+".log")}
	}
	procs := []*proc{
		newProc("legacy", legacyURL+"/shop/catalog.do", "legacy", "--listen", la, "--db", filepath.Join(dir, "legacy.db")),
		newProc("catalog", p.catalogURL+"/openapi.yaml", "catalog", "--listen", ca, "--db", filepath.Join(dir, "catalog.db"), "--faults-admin", fa),
		newProc("orders", "http://"+oa+"/openapi.yaml", "orders", "--listen", oa, "--db", filepath.Join(dir, "orders.db"),
			"--catalog", p.catalogURL, "--legacy", legacyURL, "--sync-db", filepath.Join(dir, "sync.db")),
		newProc("acl", aclURL+"/openapi.yaml", "acl", "--listen", aa, "--legacy", legacyURL, "--db", filepath.Join(dir, "acl.db")),
	}
	for _, pr := range procs {
		pr.start()
		t.Cleanup(pr.stop)
	}
	// The dual-run sync's backfill puts the legacy's products into the
	// catalog: wait for the ones the clients ask for.
	deadline := time.Now().Add(60 * time.Second)
	for _, sku := range pilotSKUs {
		for {
			res, err := p.http.Get(p.catalogURL + "/api/v1/products/" + sku)
			if err == nil {
				_ = res.Body.Close()
				if res.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the catalog has no %s 60s after start (backfill): %v", sku, err)
			}
			time.Sleep(100 * time.Millisecond) // polling interval while the backfill runs
		}
	}

	pa, ada := freeAddr(t), freeAddr(t)
	p.publicURL, p.adminURL = "http://"+pa, "http://"+ada
	p.cfgArgs = []any{pa, ada, filepath.Join(dir, "audit.db"), adminToken, legacyURL, p.catalogURL, aclURL, pilotInterval.String(),
		"", pilotInterval.String(), hold25.String(), filepath.Join(dir, "shadow.db"), filepath.Join(dir, "retire.db")}
	p.cfgPath = filepath.Join(dir, "ficus.yaml")
	p.writeConfig(withRule)
	p.gateway = newProc("gateway", p.adminURL+"/readyz", "gateway", "--config", p.cfgPath)
	p.gateway.start()
	t.Cleanup(func() { p.gateway.stop() })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log (tail):\n%s", tail(p.gateway.log))
		}
	})
	var err error
	if p.client, err = admin.NewClient(p.adminURL, adminToken, nil); err != nil {
		t.Fatal(err)
	}
	return p
}

var pilotSKUs = []string{"ART-1001", "ART-1002", "ART-1003", "ART-1004", "ART-1005"}

func (p *pilot) writeConfig(withRule bool) {
	p.t.Helper()
	args := append([]any(nil), p.cfgArgs...)
	if withRule {
		args[8] = versionRule
	}
	if err := os.WriteFile(p.cfgPath, []byte(fmt.Sprintf(pilotConfig, args...)), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// ctl runs `ficus ctl` and returns its output and exit status.
func (p *pilot) ctl(args ...string) (string, int) {
	p.t.Helper()
	full := append([]string{"ctl", "--admin", p.adminURL, "--token", adminToken}, args...)
	out, err := exec.Command(ficusBin, full...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	p.t.Fatalf("ficus %s: %v", strings.Join(full, " "), err)
	return "", -1
}

func (p *pilot) status() admin.RolloutStatus {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := p.client.Rollout(ctx, "products")
	if err != nil {
		p.t.Fatalf("rollout status: %v", err)
	}
	return st
}

// await polls the rollout status until ok, or fails after limit.
func (p *pilot) await(what string, limit time.Duration, ok func(admin.RolloutStatus) bool) admin.RolloutStatus {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st := p.status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(st, "", "  ")
			p.t.Fatalf("%s: not within %v; status:\n%s", what, limit, b)
		}
		time.Sleep(100 * time.Millisecond) // polling interval of the status
	}
}

// hit is one client request's outcome.
type hit struct {
	at       time.Time
	status   int
	backend  string
	fallback bool
}

// traffic is users reading products through the gateway's public port
// until stopped; every outcome is kept.
type traffic struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	hits []hit
	n    atomic.Int64
}

func (p *pilot) startTraffic(workers int) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	for w := range workers {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			c := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-tr.stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, p.publicURL+"/api/v1/products/"+pilotSKUs[rng.IntN(len(pilotSKUs))], nil)
				req.Header.Set("X-User-Id", fmt.Sprintf("user-%d", rng.IntN(100000)))
				h := hit{at: time.Now()}
				res, err := c.Do(req)
				if err != nil {
					h.status = 0
				} else {
					_, _ = io.Copy(io.Discard, res.Body)
					_ = res.Body.Close()
					h.status, h.backend, h.fallback = res.StatusCode, res.Header.Get("X-Ficus-Backend"), res.Header.Get("X-Ficus-Fallback") != ""
				}
				tr.mu.Lock()
				tr.hits = append(tr.hits, h)
				tr.mu.Unlock()
				tr.n.Add(1)
				time.Sleep(20 * time.Millisecond) // a user's think time: keeps the load modest on a shared machine (and under the catalog's rate limit)
			}
		}()
	}
	return tr
}

func (tr *traffic) halt() []hit {
	close(tr.stop)
	tr.wg.Wait()
	return tr.hits
}

func (p *pilot) setFault(body string) {
	p.t.Helper()
	method, rd := http.MethodPut, io.Reader(strings.NewReader(body))
	if body == "" {
		method, rd = http.MethodDelete, nil
	}
	req, _ := http.NewRequest(method, p.faultsURL+"/admin/faults", rd)
	req.Header.Set("Content-Type", "application/json")
	res, err := p.http.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		p.t.Fatalf("%s /admin/faults: %d %s", method, res.StatusCode, b)
	}
}

func (p *pilot) get(path string) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.adminURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := p.http.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func inCanaryStep(i int) func(admin.RolloutStatus) bool {
	return func(st admin.RolloutStatus) bool {
		return st.State.Phase == rollout.PhaseCanary && st.State.Step == i
	}
}

// TestRollbackDrill: the autopilot takes `products` to its 25% step; 5% of
// the catalog's answers are then made to fail, and the autopilot rolls the
// route back to 0% on its own, within one interval of the failing gate's
// evidence, while no user saw more errors than the step's share.
func TestRollbackDrill(t *testing.T) {
	p := startPilot(t, true, time.Minute)

	// Fault injection is not reachable through the gateway's public port.
	res, err := p.http.Post(p.publicURL+"/admin/faults", "application/json", strings.NewReader(`{"outage":true}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if got := p.status(); got.State.Phase != rollout.PhaseLegacy {
		t.Fatalf("before start: phase %s", got.State.Phase)
	}
	if r, err := p.http.Get(p.catalogURL + "/api/v1/products/ART-1001"); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("a fault posted to the gateway's public port reached the catalog: %v %v", r, err)
	}

	tr := p.startTraffic(6)
	defer func() {
		select {
		case <-tr.stop:
		default:
			tr.halt()
		}
	}()
	if out, code := p.ctl("rollout", "start", "products", "--reason", "drill: catalog rollout"); code != 0 {
		t.Fatalf("rollout start: exit %d\n%s", code, out)
	}
	p.await("shadow -> 5% -> 25%", 90*time.Second, inCanaryStep(1))
	t.Logf("at the 25%% step after %d requests", tr.n.Load())

	// 5% of the catalog's product answers fail from now on.
	faultAt := time.Now()
	p.setFault(`{"error_rate": 0.05, "path_prefix": "/api/v1/products"}`)
	st := p.await("automatic rollback", 60*time.Second, func(st admin.RolloutStatus) bool {
		return st.State.Phase == rollout.PhaseRolledBack
	})
	rolledAt := time.Now()
	hits := tr.halt()
	p.setFault("")

	// Within one interval of the evidence: the first request whose failure
	// the gate counts (a fallback, or a 5xx from new) to the rollback.
	var firstBad time.Time
	var during, errorsSeen, onNew int
	for _, h := range hits {
		if h.at.Before(faultAt) || h.at.After(rolledAt) {
			continue
		}
		during++
		if h.status >= 500 || h.status == 0 {
			errorsSeen++
		}
		if h.backend == "new" {
			onNew++
		}
		if (h.fallback || h.status >= 500) && (firstBad.IsZero() || h.at.Before(firstBad)) {
			firstBad = h.at
		}
	}
	if firstBad.IsZero() {
		// The shadow copies to the catalog meet the fault at once, before
		// any user request on the new side may have: a rollback on the
		// shadow gate is then the earliest evidence, not a false alarm.
		if !strings.Contains(st.State.Reason, "gate shadow failed") {
			t.Fatalf("no client saw the fault (%d requests, %d on new), yet the rollout rolled back: %s", during, onNew, st.State.Reason)
		}
		t.Logf("the shadow copies caught the fault before any user saw it: %s", st.State.Reason)
		firstBad = faultAt
	}
	// The gate may see the evidence at the next evaluation: one interval
	// (plus the tick that notices it is due); the slack is for polling and
	// a loaded machine.
	took := rolledAt.Sub(firstBad)
	t.Logf("first failed answer %v after the fault, rollback %v after it (%d requests in the window, %d on new, %d errors seen by users)",
		firstBad.Sub(faultAt).Round(time.Millisecond), took.Round(time.Millisecond), during, onNew, errorsSeen)
	if limit := 2*pilotInterval + 2*time.Second; took > limit {
		t.Errorf("rollback %v after the first failure, want within one interval (%v with tick and polling)", took, limit)
	}
	// No user saw more errors than the step's share of the fault: 25% of 5%.
	if share := float64(errorsSeen) / float64(max(during, 1)); share > 0.25*0.05 {
		t.Errorf("users saw %d errors in %d requests (%.2f%%), more than the step's share 1.25%%", errorsSeen, during, 100*share)
	}

	// Where it stands: 0%, pinned to legacy, waiting for an operator.
	if st.State.Percent != 0 || !st.State.PinnedLegacy || st.Condition != rollout.CondRolledBack {
		t.Errorf("after the rollback: %+v", st)
	}
	// The first failing gate is the one the rollback names (the fault may
	// fail several: fallbacks fail resilience, the shadow copies' 500s fail
	// shadow).
	var failed *rollout.GateResult
	for i, g := range st.State.Gates {
		if g.Verdict == rollout.Fail && failed == nil {
			failed = &st.State.Gates[i]
		}
	}
	if failed == nil || !strings.Contains(st.State.Reason, failed.Gate) {
		t.Fatalf("no failing gate named in the state: reason %q gates %+v", st.State.Reason, st.State.Gates)
	}
	for i := range 20 {
		req, _ := http.NewRequest(http.MethodGet, p.publicURL+"/api/v1/products/ART-1001", nil)
		req.Header.Set("X-User-Id", fmt.Sprintf("after-%d", i))
		r, err := p.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = r.Body.Close()
		if b := r.Header.Get("X-Ficus-Backend"); b != "legacy" {
			t.Fatalf("after the rollback a user was served by %q", b)
		}
	}
	out, code := p.ctl("rollout", "status", "products")
	if code != 4 || !strings.Contains(out, "rolled-back") || !strings.Contains(out, strings.ToUpper(string(rollout.Fail))) {
		t.Errorf("ctl rollout status: exit %d, want 4 (rolled back)\n%s", code, out)
	}
	t.Logf("ficus ctl rollout status products:\n%s", out)

	// The audit says why, and nobody but the autopilot acted after the start.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries, err := p.client.Audit(ctx, "products", 100)
	if err != nil {
		t.Fatal(err)
	}
	var rollback *admin.AuditEntry
	for i, e := range entries {
		if e.Field == "rollout:start" {
			break // newest first: everything before this came after the start
		}
		if e.Actor != rollout.ActorAutopilot {
			t.Errorf("after the start, %s changed %s (%s): the drill needs nobody to act", e.Actor, e.Field, e.Reason)
		}
		if e.Field == "rollout:rollback" {
			rollback = &entries[i]
		}
	}
	if rollback == nil {
		t.Fatalf("no rollout:rollback audit entry; audit:\n%+v", entries)
	}
	var rec struct {
		Gate  string               `json:"gate"`
		Gates []rollout.GateResult `json:"gates"`
	}
	if err := json.Unmarshal(rollback.New, &rec); err != nil || rec.Gate != failed.Gate {
		t.Errorf("rollback audit entry: gate %q, want %q (%v): %s", rec.Gate, failed.Gate, err, rollback.New)
	}
	var measured bool
	for _, g := range rec.Gates {
		if g.Gate == rec.Gate && g.Verdict == rollout.Fail && len(g.Measured) > 0 && len(g.Thresholds) > 0 {
			measured = true
		}
	}
	if !measured {
		t.Errorf("the rollback audit entry lacks the failing gate's measured values and thresholds: %s", rollback.New)
	}

	// The annotation and the metrics show it too.
	code2, body := p.get("/admin/annotations?route=products")
	if code2 != http.StatusOK || !strings.Contains(body, "rollout:rollback") || !strings.Contains(body, "gate "+failed.Gate+" failed") {
		t.Errorf("annotations: %d %s", code2, body)
	}
	_, metrics := p.get("/metrics")
	for _, want := range []string{
		fmt.Sprintf(`ficus_rollout_rollbacks_total{gate=%q,route="products"} 1`, failed.Gate),
		`ficus_rollout_phase{phase="rolled-back",route="products"} 1`,
		`ficus_rollout_step_percent{route="products"} 0`,
		fmt.Sprintf(`ficus_rollout_gate_checks_total{gate=%q,result="fail",route="products"} 1`, failed.Gate),
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// It stays put until an operator acts. A rolled-back rollout is not
	// evaluated any more, so there is no evaluation to wait for: the window
	// of three intervals is what is asserted, against the state's version
	// as it was before it (any write would have raised it).
	before := p.status().State
	time.Sleep(3 * pilotInterval) // the window itself, not synchronisation
	if st := p.status(); st.State.Phase != rollout.PhaseRolledBack || st.State.Version != before.Version {
		t.Errorf("a rolled-back rollout moved without an operator: version %d then %+v", before.Version, st.State)
	}
}

// TestShadowGateDrill: the seeded `version` difference holds `products` in
// the shadow phase (no user moves) until an owned ignore rule decides it;
// with the rule in the configuration (the gateway restarted, the rollout
// resuming from the control plane) it proceeds to 100% and `new`.
func TestShadowGateDrill(t *testing.T) {
	p := startPilot(t, false, 2*time.Second)
	tr := p.startTraffic(4)
	defer func() {
		select {
		case <-tr.stop:
		default:
			tr.halt()
		}
	}()
	if out, code := p.ctl("rollout", "start", "products", "--reason", "drill: shadow gate"); code != 0 {
		t.Fatalf("rollout start: exit %d\n%s", code, out)
	}
	blocked := p.await("the shadow gate fails on the version difference", 60*time.Second, func(st admin.RolloutStatus) bool {
		return len(st.State.Gates) == 1 && st.State.Gates[0].Gate == rollout.GateShadow && st.State.Gates[0].Verdict == rollout.Fail
	})
	if blocked.State.Phase != rollout.PhaseShadow || blocked.State.Percent != 0 || blocked.Condition != rollout.CondWaiting {
		t.Fatalf("a failing shadow gate must hold the route at 0%% in shadow: %+v", blocked)
	}
	out, code := p.ctl("rollout", "status", "products")
	if code != 2 || !strings.Contains(out, "shadow") {
		t.Errorf("ctl rollout status while blocked: exit %d, want 2 (waiting)\n%s", code, out)
	}
	// It stays blocked: four more evaluations (counted, not slept through),
	// still shadow, nobody on new.
	failedChecks := func() float64 {
		_, m := p.get("/metrics")
		v, _ := metricstest.Series(metricstest.Parse(t, []byte(m)), "ficus_rollout_gate_checks_total", "gate", "shadow", "result", "fail", "route", "products")
		return v
	}
	first := failedChecks()
	deadline := time.Now().Add(20 * pilotInterval)
	for failedChecks() < first+4 {
		if time.Now().After(deadline) {
			t.Fatalf("the autopilot stopped evaluating the blocked rollout: %v failed shadow checks, then %v", first, failedChecks())
		}
		time.Sleep(100 * time.Millisecond) // polling interval of the metrics
	}
	if st := p.status(); st.State.Phase != rollout.PhaseShadow || st.State.Percent != 0 {
		t.Fatalf("the shadow gate let the rollout move: %+v", st.State)
	}
	code2, report := p.get("/admin/shadow/products")
	if code2 != http.StatusOK || !strings.Contains(report, "/version") {
		t.Errorf("the shadow report does not name /version as differing: %d %s", code2, report)
	}

	// The owner decides: an owned, expiring ignore rule. The gateway
	// restarts with it; the rollout resumes in its phase from the control
	// plane.
	stoppedAt := time.Now()
	p.gateway.stop()
	p.writeConfig(true)
	p.gateway.start()
	restartedAt := time.Now()
	if st := p.status(); st.State.Phase != rollout.PhaseShadow {
		t.Fatalf("after the restart the rollout is %s, want shadow (resumed)", st.State.Phase)
	}
	done := p.await("shadow -> 5% -> 25% -> 100% -> new", 120*time.Second, func(st admin.RolloutStatus) bool {
		return st.State.Phase == rollout.PhaseNew
	})
	hits := tr.halt()
	if done.State.Percent != 100 || done.Condition != rollout.CondDone {
		t.Errorf("at new: %+v", done)
	}
	// While the gateway itself is down clients cannot connect; every other
	// request must succeed.
	var errs int
	for _, h := range hits {
		restarting := !h.at.Before(stoppedAt.Add(-time.Second)) && h.at.Before(restartedAt)
		if h.status >= 500 || (h.status == 0 && !restarting) {
			errs++
		}
	}
	if errs > 0 {
		t.Errorf("%d of %d user requests failed during a clean rollout", errs, len(hits))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries, err := p.client.Audit(ctx, "products", 100)
	if err != nil {
		t.Fatal(err)
	}
	var path []string
	for i := len(entries) - 1; i >= 0; i-- {
		if strings.HasPrefix(entries[i].Field, "rollout:") {
			var to struct {
				Phase   string  `json:"phase"`
				Percent float64 `json:"percent"`
			}
			_ = json.Unmarshal(entries[i].New, &to)
			path = append(path, fmt.Sprintf("%s %s %v%%", entries[i].Actor, to.Phase, to.Percent))
		}
	}
	want := []string{"e2e shadow 0%", "autopilot canary 5%", "autopilot canary 25%", "autopilot canary 100%", "autopilot new 100%"}
	if !bytes.Equal([]byte(strings.Join(path, "|")), []byte(strings.Join(want, "|"))) {
		t.Errorf("audit trail %q, want %q", path, want)
	}
}
