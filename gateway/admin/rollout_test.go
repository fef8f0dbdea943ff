package admin

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/controlplane"
	"github.com/ficus-gw/ficus/gateway/controlplane/rolloutstore"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/ficus-gw/ficus/gateway/rollout"
)

// stepClock is the autopilot's clock in these tests.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *stepClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// quietSource says every window had 10 shadow pairs, all matching: too few
// for the shadow gate's verdict.
type quietSource struct{}

func (quietSource) Sample(context.Context, []string, string, time.Duration) (rollout.Sample, error) {
	return rollout.Sample{ShadowCompared: 10}, nil
}

type rolloutFixture struct {
	*fixture
	ctl   *rollout.Controller
	clock *stepClock
}

func newRolloutFixture(t *testing.T) *rolloutFixture {
	t.Helper()
	cfg := &config.Config{
		Upstreams: map[string]config.Upstream{"legacy": {URL: "http://127.0.0.1:1"}, "catalog": {URL: "http://127.0.0.1:2", Kind: "new"}},
		Routes: []config.Route{
			{Name: "products", Path: "/api/v1/products/*", New: "catalog", Shadow: &config.Shadow{Percent: 100},
				Rollout: &config.Rollout{Interval: time.Second}},
			{Name: "old-shop", Path: "/shop/*"},
		},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	eng, err := decide.NewEngine(cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := controlplane.OpenSQLite(testCtx(t), filepath.Join(t.TempDir(), "cp.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	clock := &stepClock{t: t0}
	rs := rolloutstore.New(store)
	ctl, err := rollout.New(rollout.Options{Plans: rollout.PlansFromConfig(cfg), Store: rs, Audit: rs, Source: quietSource{}, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	api, err := New(Options{
		Engine: eng, Store: store, Rollouts: ctl,
		Tokens: []config.Token{
			{Name: "alice", Value: operatorToken, Scopes: []string{"read", "write"}},
			{Name: "viewer", Value: viewerToken, Scopes: []string{"read"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Restore(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(Prefix, api.Handler())
	return &rolloutFixture{fixture: &fixture{engine: eng, api: api, store: store, app: app, cfg: cfg}, ctl: ctl, clock: clock}
}

func (f *rolloutFixture) command(t *testing.T, cmd, token, body string, wantStatus int) (RolloutStatus, errBody) {
	t.Helper()
	var raw map[string]any
	resp := f.call(t, "POST", "/admin/rollouts/products/"+cmd, token, body, &raw)
	if resp.StatusCode != wantStatus {
		t.Fatalf("POST %s: %d %v, want %d", cmd, resp.StatusCode, raw, wantStatus)
	}
	var st RolloutStatus
	var eb errBody
	if wantStatus == 200 {
		f.call(t, "GET", "/admin/rollouts/products", viewerToken, "", &st)
	} else {
		eb.Code, _ = raw["code"].(string)
		eb.Message, _ = raw["message"].(string)
	}
	return st, eb
}

type errBody struct{ Code, Message string }

func (f *rolloutFixture) pinned(t *testing.T) string {
	t.Helper()
	for _, st := range f.engine.States() {
		if st.Name == "products" {
			return st.Pinned
		}
	}
	t.Fatal("no products route")
	return ""
}

func TestRolloutEndpoints(t *testing.T) {
	t.Parallel()
	f := newRolloutFixture(t)

	var st RolloutStatus
	if resp := f.call(t, "GET", "/admin/rollouts/products", viewerToken, "", &st); resp.StatusCode != 200 {
		t.Fatalf("status: %d", resp.StatusCode)
	}
	if st.State.Phase != rollout.PhaseLegacy || st.ExitCode != 5 || st.Cohort != "products" || st.Interval != time.Second {
		t.Errorf("before start: %+v", st)
	}

	// Scopes, reasons and unknown names, in the API's error format.
	if _, eb := f.command(t, "start", viewerToken, `{"reason":"x"}`, 403); eb.Code != CodeForbidden {
		t.Errorf("viewer start: %+v", eb)
	}
	if _, eb := f.command(t, "start", operatorToken, `{}`, 400); eb.Code != CodeReasonRequired {
		t.Errorf("start without reason: %+v", eb)
	}
	var eb map[string]any
	if resp := f.call(t, "POST", "/admin/rollouts/search/start", operatorToken, `{"reason":"x"}`, &eb); resp.StatusCode != 404 || eb["code"] != CodeNoPlan {
		t.Errorf("unknown route: %d %v", resp.StatusCode, eb)
	}

	st, _ = f.command(t, "start", operatorToken, `{"reason":"CAT-12 go"}`, 200)
	if st.State.Phase != rollout.PhaseShadow || st.State.Percent != 0 || st.ExitCode != 0 {
		t.Errorf("after start: %+v", st)
	}
	if _, eb := f.command(t, "start", operatorToken, `{"reason":"again"}`, 409); eb.Code != CodeAlreadyRunning {
		t.Errorf("second start: %+v", eb)
	}
	if _, eb := f.command(t, "promote", operatorToken, `{"reason":"early"}`, 409); eb.Code != CodeNotInCanary {
		t.Errorf("promote in shadow: %+v", eb)
	}

	// One evaluation: too few pairs, the shadow gate is inconclusive.
	f.clock.add(2 * time.Second)
	f.ctl.Reconcile(testCtx(t))
	f.call(t, "GET", "/admin/rollouts/products", viewerToken, "", &st)
	if len(st.State.Gates) != 1 || st.State.Gates[0].Verdict != rollout.Inconclusive || !strings.Contains(st.Next, "10 of 200 compared pairs") {
		t.Errorf("after an evaluation: gates %+v next %q", st.State.Gates, st.Next)
	}
	var buf bytes.Buffer
	if err := RenderRollout(&buf, st, t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"phase         shadow", "shadow  INCONCLUSIVE", "compared=10", "minCompared=200", "condition     progressing (exit status 0)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("rendered status lacks %q:\n%s", want, buf.String())
		}
	}

	st, _ = f.command(t, "pause", operatorToken, `{"reason":"change freeze"}`, 200)
	if st.State.Phase != rollout.PhasePaused || st.ExitCode != 3 {
		t.Errorf("after pause: %+v", st)
	}
	st, _ = f.command(t, "resume", operatorToken, `{"reason":"freeze over"}`, 200)
	if st.State.Phase != rollout.PhaseShadow {
		t.Errorf("after resume: %+v", st)
	}
	st, _ = f.command(t, "abort", operatorToken, `{"reason":"INC-7"}`, 200)
	if st.State.Phase != rollout.PhaseRolledBack || st.ExitCode != 4 || !st.State.PinnedLegacy {
		t.Errorf("after abort: %+v", st)
	}
	// The abort's pin is live on this replica at once.
	if p := f.pinned(t); p != "legacy" {
		t.Errorf("after abort the route is pinned %q, want legacy", p)
	}

	var list []RolloutStatus
	if resp := f.call(t, "GET", "/admin/rollouts", viewerToken, "", &list); resp.StatusCode != 200 || len(list) != 1 || list[0].Cohort != "products" {
		t.Errorf("list: %d %+v", resp.StatusCode, list)
	}
	var actions []string
	for _, e := range f.audit(t) {
		if strings.HasPrefix(e.Field, "rollout:") {
			actions = append(actions, e.Actor+" "+e.Field+" "+e.Reason)
		}
	}
	want := []string{"alice rollout:abort INC-7", "alice rollout:resume freeze over", "alice rollout:pause change freeze", "alice rollout:start CAT-12 go"}
	if strings.Join(actions, "|") != strings.Join(want, "|") {
		t.Errorf("audit %q, want %q", actions, want)
	}
}

func TestRolloutWithoutAutopilot(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var eb map[string]any
	if resp := f.call(t, "GET", "/admin/rollouts/products", viewerToken, "", &eb); resp.StatusCode != 404 || eb["code"] != CodeNoAutopilot {
		t.Errorf("no autopilot: %d %v", resp.StatusCode, eb)
	}
}

func TestRolloutClient(t *testing.T) {
	t.Parallel()
	f := newRolloutFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = f.app.Listener(ln) }()
	t.Cleanup(func() { _ = f.app.Shutdown() })
	c, err := NewClient("http://"+ln.Addr().String(), operatorToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.RolloutCommand(testCtx(t), "products", RolloutStart, "CAT-12")
	if err != nil || st.State.Phase != rollout.PhaseShadow {
		t.Fatalf("start: %+v %v", st, err)
	}
	_, err = c.RolloutCommand(testCtx(t), "products", RolloutPromote, "early")
	if !IsCode(err, CodeNotInCanary) || !strings.Contains(err.Error(), "next: ") {
		t.Errorf("promote in shadow: %v", err)
	}
	_, err = c.Rollout(testCtx(t), "nope")
	if !IsCode(err, CodeNoPlan) || !strings.Contains(err.Error(), "routes[].rollout") {
		t.Errorf("unknown: %v", err)
	}
	list, err := c.Rollouts(testCtx(t))
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %+v %v", list, err)
	}
	var buf bytes.Buffer
	if err := RenderRollouts(&buf, list); err != nil || !strings.Contains(buf.String(), "products") || !strings.Contains(buf.String(), "shadow") {
		t.Errorf("rendered list: %v\n%s", err, buf.String())
	}
}
