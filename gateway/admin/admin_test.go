package admin

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/controlplane"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
)

const (
	operatorToken = "operator-token-0123456789"
	viewerToken   = "viewer-token-0123456789"
	writerToken   = "writer-only-token-0123456789"
)

var t0 = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

type fixture struct {
	engine *decide.Engine
	api    *API
	store  controlplane.Store
	path   string // the store's SQLite file
	app    *fiber.App
	cfg    *config.Config
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg := &config.Config{
		Upstreams: map[string]config.Upstream{"legacy": {URL: "http://127.0.0.1:1"}, "catalog": {URL: "http://127.0.0.1:2"}},
		Routes: []config.Route{
			{Name: "products", Path: "/api/v1/products/*", New: "catalog", Canary: 25},
			{Name: "old-shop", Path: "/shop/*"},
		},
	}
	cfg.ApplyDefaults()
	eng, err := decide.NewEngine(cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cp.db")
	var tick atomic.Int64
	now := func() time.Time { return t0.Add(time.Duration(tick.Add(1)) * time.Minute) }
	store, err := controlplane.OpenSQLite(testCtx(t), path, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	api, err := New(Options{
		Engine:   eng,
		Breakers: func() map[string]string { return map[string]string{"legacy": "closed", "catalog": "half-open"} },
		Stats: func(route string) map[string]BackendStats {
			if route != "products" {
				return nil
			}
			return map[string]BackendStats{"legacy": {RequestsPerSec: 12, ErrorsPerSec: 0.5}, "new": {RequestsPerSec: 4, ErrorsPerSec: 0}}
		},
		Tokens: []config.Token{
			{Name: "alice", Value: operatorToken, Scopes: []string{"read", "write"}},
			{Name: "viewer", Value: viewerToken, Scopes: []string{"read"}},
			{Name: "robot", Value: writerToken, Scopes: []string{"write"}},
		},
		Store: store,
		Reports: map[string]fiber.Handler{"retire": func(c *fiber.Ctx) error {
			return c.JSON(map[string]string{"path": c.Path()})
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Restore(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(Prefix, api.Handler())
	return &fixture{engine: eng, api: api, store: store, path: path, app: app, cfg: cfg}
}

// call sends one request through the app and decodes the JSON answer into
// out (when not nil).
func (f *fixture) call(t *testing.T, method, path, token, body string, out any) *http.Response {
	t.Helper()
	return f.callH(t, method, path, token, body, out, nil)
}

func (f *fixture) callH(t *testing.T, method, path, token, body string, out any, hdr map[string]string) *http.Response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.app.Test(req, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: answer %q: %v", method, path, raw, err)
		}
	}
	return resp
}

func (f *fixture) audit(t *testing.T) []AuditEntry {
	t.Helper()
	var entries []AuditEntry
	if resp := f.call(t, "GET", "/admin/audit", viewerToken, "", &entries); resp.StatusCode != 200 {
		t.Fatalf("GET /admin/audit: %d", resp.StatusCode)
	}
	return entries
}

func TestAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	canary := `{"percent":30,"reason":"looks good"}`
	tests := []struct {
		name, method, path, auth, body string
		status                         int
		code                           string
	}{
		{"no token", "GET", "/admin/routes", "", "", 401, CodeUnauthorized},
		{"wrong token", "GET", "/admin/routes", "Bearer operator-token-0123456780", "", 401, CodeUnauthorized},
		{"token prefix", "GET", "/admin/routes", "Bearer operator", "", 401, CodeUnauthorized},
		{"basic scheme", "GET", "/admin/routes", "Basic " + operatorToken, "", 401, CodeUnauthorized},
		{"unknown path still needs a token", "GET", "/admin/secret", "", "", 401, CodeUnauthorized},
		{"read-only token on a write", "PUT", "/admin/routes/products/canary", "Bearer " + viewerToken, canary, 403, CodeForbidden},
		{"write-only token on a read", "GET", "/admin/routes", "Bearer " + writerToken, "", 403, CodeForbidden},
		{"read token reads", "GET", "/admin/routes", "Bearer " + viewerToken, "", 200, ""},
		{"lower-case scheme", "GET", "/admin/routes", "bearer " + viewerToken, "", 200, ""},
		{"write token writes", "PUT", "/admin/routes/products/canary", "Bearer " + operatorToken, canary, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := f.app.Test(req, 10_000)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			if tc.code == "" {
				return
			}
			var body apierr.Body
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if body.Code != tc.code || body.Message == "" || body.RequestID == "" || body.RequestID != resp.Header.Get("X-Request-Id") {
				t.Fatalf("body %+v (X-Request-Id %q), want code %s with message and requestId", body, resp.Header.Get("X-Request-Id"), tc.code)
			}
		})
	}
	// Only the allowed write happened, and it was audited as alice.
	if st, _ := f.engine.State("products"); st.Canary != 30 {
		t.Fatalf("canary %v after the auth cases, want 30 (only alice's write)", st.Canary)
	}
	if entries := f.audit(t); len(entries) != 1 || entries[0].Actor != "alice" {
		t.Fatalf("audit after auth cases: %+v", entries)
	}
}

func TestChangesAreAuditedWithActorAndReason(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var res ChangeResult
	if resp := f.call(t, "PUT", "/admin/routes/products/canary", operatorToken, `{"percent":50,"reason":"  error rate flat for 1h  "}`, &res); resp.StatusCode != 200 {
		t.Fatalf("PUT canary: %d", resp.StatusCode)
	}
	if !res.Changed || res.Route.CanaryPercent != 50 || res.Route.CanarySource != SourceControlPlane || len(res.Audit) != 1 ||
		string(res.Audit[0].Old) != "25" || string(res.Audit[0].New) != "50" || res.StateVersion != 1 {
		t.Fatalf("change result %+v", res)
	}
	if st, _ := f.engine.State("products"); st.Canary != 50 {
		t.Fatalf("engine canary %v, want 50", st.Canary)
	}
	if resp := f.call(t, "POST", "/admin/routes/products/pin", operatorToken, `{"backend":"legacy","reason":"incident 42"}`, nil); resp.StatusCode != 200 {
		t.Fatalf("pin: %d", resp.StatusCode)
	}
	if resp := f.call(t, "POST", "/admin/routes/products/resume", operatorToken, `{"reason":"incident 42 resolved"}`, nil); resp.StatusCode != 200 {
		t.Fatalf("resume: %d", resp.StatusCode)
	}
	got := f.audit(t)
	want := []AuditEntry{ // newest first
		{Actor: "alice", Field: controlplane.FieldPin, Route: "products", Old: json.RawMessage(`"legacy"`), New: json.RawMessage(`""`), Reason: "incident 42 resolved", At: t0.Add(3 * time.Minute), Version: 3},
		{Actor: "alice", Field: controlplane.FieldPin, Route: "products", Old: json.RawMessage(`""`), New: json.RawMessage(`"legacy"`), Reason: "incident 42", At: t0.Add(2 * time.Minute), Version: 2},
		{Actor: "alice", Field: controlplane.FieldCanary, Route: "products", Old: json.RawMessage(`25`), New: json.RawMessage(`50`), Reason: "error rate flat for 1h", At: t0.Add(time.Minute), Version: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("audit has %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		if g.Actor != want[i].Actor || g.Field != want[i].Field || g.Route != want[i].Route || string(g.Old) != string(want[i].Old) ||
			string(g.New) != string(want[i].New) || g.Reason != want[i].Reason || !g.At.Equal(want[i].At) || g.At.Location() != time.UTC ||
			g.RequestID == "" || g.Version != want[i].Version {
			t.Fatalf("entry %d = %+v, want %+v", i, g, want[i])
		}
	}
	var anns []Annotation
	if resp := f.call(t, "GET", "/admin/annotations?route=products&from="+itoa(t0.Add(90*time.Second).UnixMilli()), viewerToken, "", &anns); resp.StatusCode != 200 {
		t.Fatalf("annotations: %d", resp.StatusCode)
	}
	if len(anns) != 2 || anns[0].Time != t0.Add(3*time.Minute).UnixMilli() || !strings.Contains(anns[1].Text, "incident 42 (by alice)") ||
		!strings.Contains(anns[1].Title, `pin products: "" → "legacy"`) {
		t.Fatalf("annotations since t0+90s: %+v", anns)
	}
	var filtered []AuditEntry
	f.call(t, "GET", "/admin/audit?route=old-shop", viewerToken, "", &filtered)
	if len(filtered) != 0 {
		t.Fatalf("audit of another route: %+v", filtered)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestBadChangesAreRefusedAndNotApplied(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"canary without reason", "PUT", "/admin/routes/products/canary", `{"percent":50}`, 400, CodeReasonRequired},
		{"canary with blank reason", "PUT", "/admin/routes/products/canary", `{"percent":50,"reason":"   "}`, 400, CodeReasonRequired},
		{"pin without reason", "POST", "/admin/routes/products/pin", `{"backend":"new"}`, 400, CodeReasonRequired},
		{"resume without reason", "POST", "/admin/routes/products/resume", `{}`, 400, CodeReasonRequired},
		{"resume without body", "POST", "/admin/routes/products/resume", ``, 400, CodeMalformed},
		{"percent above 100", "PUT", "/admin/routes/products/canary", `{"percent":101,"reason":"x"}`, 400, CodeInvalidPercent},
		{"negative percent", "PUT", "/admin/routes/products/canary", `{"percent":-1,"reason":"x"}`, 400, CodeInvalidPercent},
		{"percent missing", "PUT", "/admin/routes/products/canary", `{"reason":"x"}`, 400, CodeInvalidPercent},
		{"percent as string", "PUT", "/admin/routes/products/canary", `{"percent":"50","reason":"x"}`, 400, CodeMalformed},
		{"unknown field", "PUT", "/admin/routes/products/canary", `{"percent":50,"reason":"x","force":true}`, 400, CodeMalformed},
		{"two objects", "PUT", "/admin/routes/products/canary", `{"percent":50,"reason":"x"}{}`, 400, CodeMalformed},
		{"unknown route", "PUT", "/admin/routes/nope/canary", `{"percent":50,"reason":"x"}`, 404, CodeNotFound},
		{"unknown route read", "GET", "/admin/routes/nope", ``, 404, CodeNotFound},
		{"bad backend", "POST", "/admin/routes/products/pin", `{"backend":"shiny","reason":"x"}`, 400, CodeInvalidBackend},
		{"canary on legacy-only route", "PUT", "/admin/routes/old-shop/canary", `{"percent":5,"reason":"x"}`, 409, CodeNoNewBackend},
		{"pin new on legacy-only route", "POST", "/admin/routes/old-shop/pin", `{"backend":"new","reason":"x"}`, 409, CodeNoNewBackend},
		{"reason too long", "PUT", "/admin/routes/products/canary", `{"percent":50,"reason":"` + strings.Repeat("x", maxReason+1) + `"}`, 400, CodeValidation},
		{"bad limit", "GET", "/admin/audit?limit=0", ``, 400, CodeValidation},
		{"bad from", "GET", "/admin/annotations?from=yesterday", ``, 400, CodeValidation},
		{"unknown endpoint", "GET", "/admin/flags", ``, 404, CodeNotFound},
		{"wrong method", "DELETE", "/admin/routes/products", ``, 405, CodeMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body apierr.Body
			resp := f.call(t, tc.method, tc.path, operatorToken, tc.body, &body)
			if resp.StatusCode != tc.status || body.Code != tc.code || body.Message == "" || body.RequestID == "" {
				t.Fatalf("status %d body %+v, want %d %s with message and requestId", resp.StatusCode, body, tc.status, tc.code)
			}
		})
	}
	if st, _ := f.engine.State("products"); st.Canary != 25 || st.Pinned != "" {
		t.Fatalf("a refused change altered the route: %+v", st)
	}
	if entries := f.audit(t); len(entries) != 0 {
		t.Fatalf("refused changes were audited: %+v", entries)
	}
}

func TestControlPlaneFailureLeavesRouteUnchanged(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// The route row is written first in the transaction; the audit insert
	// then fails, so nothing may survive.
	db, err := sqlitedb.Open(f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.W.Exec(`CREATE TRIGGER audit_full BEFORE INSERT ON ficus_cp_audit BEGIN SELECT RAISE(ABORT, 'disk full'); END`); err != nil {
		t.Fatal(err)
	}
	var body apierr.Body
	resp := f.call(t, "PUT", "/admin/routes/products/canary", operatorToken, `{"percent":80,"reason":"ramp"}`, &body)
	if resp.StatusCode != 503 || body.Code != CodeControlPlaneUnavailable || !strings.Contains(body.Message, "disk full") {
		t.Fatalf("status %d %+v, want 503 %s naming the cause", resp.StatusCode, body, CodeControlPlaneUnavailable)
	}
	resp = f.call(t, "POST", "/admin/routes/products/pin", operatorToken, `{"backend":"new","reason":"ramp"}`, &body)
	if resp.StatusCode != 503 {
		t.Fatalf("pin with a failing audit log: %d", resp.StatusCode)
	}
	if st, _ := f.engine.State("products"); st.Canary != 25 || st.Pinned != "" {
		t.Fatalf("route changed although its audit entry was not written: %+v", st)
	}
	if snap, _ := f.store.Snapshot(testCtx(t)); snap.Version != 0 || len(snap.Routes) != 0 {
		t.Fatalf("half a change was stored: %+v", snap)
	}
	// With the database gone entirely nothing is applied either.
	if _, err := db.W.Exec(`DROP TRIGGER audit_full`); err != nil {
		t.Fatal(err)
	}
	_ = f.store.Close()
	if resp := f.call(t, "PUT", "/admin/routes/products/canary", operatorToken, `{"percent":80,"reason":"ramp"}`, nil); resp.StatusCode != 503 {
		t.Fatalf("closed audit db: %d, want 503", resp.StatusCode)
	}
	if st, _ := f.engine.State("products"); st.Canary != 25 {
		t.Fatalf("canary %v after a failed audit, want 25", st.Canary)
	}
}

func TestRoutesShowLiveStateBreakersAndRates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.engine.Pin("products", decide.New); err != nil {
		t.Fatal(err)
	}
	var routes []RouteView
	if resp := f.call(t, "GET", "/admin/routes", viewerToken, "", &routes); resp.StatusCode != 200 {
		t.Fatalf("GET routes: %d", resp.StatusCode)
	}
	if len(routes) != 3 || routes[0].Name != "products" || routes[2].Name != "default" {
		t.Fatalf("routes %+v", routes)
	}
	p := routes[0]
	if p.CanaryPercent != 25 || p.Pinned != "new" || len(p.Backends) != 2 {
		t.Fatalf("products %+v", p)
	}
	if b := p.Backends[1]; b.Backend != "new" || b.Upstream != "catalog" || b.Breaker != "half-open" || b.RequestsPerSec != 4 {
		t.Fatalf("products new backend %+v", b)
	}
	if b := p.Backends[0]; b.Upstream != "legacy" || b.Breaker != "closed" || b.ErrorsPerSec != 0.5 {
		t.Fatalf("products legacy backend %+v", b)
	}
	if len(routes[1].Backends) != 1 {
		t.Fatalf("legacy-only route shows %d backends", len(routes[1].Backends))
	}
}

func TestNewRequiresEngineAndStore(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := New(Options{Store: f.store}); err == nil {
		t.Fatal("New without an engine succeeded")
	}
	if _, err := New(Options{Engine: f.engine}); err == nil {
		t.Fatal("New without a control plane store succeeded")
	}
}

// serve runs f's app on a loopback listener until the test ends and
// returns its base URL.
func serve(t *testing.T, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Listener(ln) }()
	t.Cleanup(func() {
		_ = app.ShutdownWithTimeout(5 * time.Second)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	return "http://" + ln.Addr().String()
}

// The token's environment variable wins over its value in the file, and
// the file value then no longer works. Not parallel: it sets the environment.
func TestTokenFromEnvironmentWins(t *testing.T) {
	t.Setenv("FICUS_TEST_ADMIN_TOKEN", "env-token-0123456789abcdef")
	f := newFixture(t)
	api, err := New(Options{
		Engine: f.engine,
		Store:  f.store,
		Tokens: []config.Token{{Name: "ops", Value: operatorToken, ValueEnv: "FICUS_TEST_ADMIN_TOKEN", Scopes: []string{"read"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New()
	app.Use(Prefix, api.Handler())
	for tok, want := range map[string]int{"env-token-0123456789abcdef": 200, operatorToken: 401} {
		req := httptest.NewRequest("GET", "/admin/routes", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := app.Test(req, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != want {
			t.Errorf("token %.8s...: %d, want %d", tok, resp.StatusCode, want)
		}
	}
}

func TestRestartRestoresTypedStateFromTheControlPlane(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/admin/routes/products/canary", `{"percent":10,"reason":"start"}`},
		{"PUT", "/admin/routes/products/canary", `{"percent":60,"reason":"ramp"}`},
		{"POST", "/admin/routes/products/pin", `{"backend":"legacy","reason":"incident"}`},
		{"POST", "/admin/routes/old-shop/pin", `{"backend":"legacy","reason":"freeze"}`},
		{"POST", "/admin/routes/old-shop/resume", `{"reason":"unfreeze"}`},
	} {
		if resp := f.call(t, c.method, c.path, operatorToken, c.body, nil); resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d", c.method, c.path, resp.StatusCode)
		}
	}
	// A restart: a fresh engine from the same config, the store reopened.
	_ = f.store.Close()
	store, err := controlplane.OpenSQLite(testCtx(t), f.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	fresh, err := decide.NewEngine(f.cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	api, err := New(Options{Engine: fresh, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Restore(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if st, _ := fresh.State("products"); st.Canary != 60 || st.Pinned != "legacy" {
		t.Fatalf("products %+v; want canary 60 pinned to legacy", st)
	}
	if st, _ := fresh.State("old-shop"); st.Pinned != "" {
		t.Fatalf("old-shop was resumed before the restart but is %+v", st)
	}
}

func TestIfMatchStaleVersionIs409WithTheCurrentState(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var first ChangeResult
	f.call(t, "PUT", "/admin/routes/products/canary", operatorToken, `{"percent":30,"reason":"a"}`, &first)
	// Two operators both looked at version 1; the first write wins.
	h := map[string]string{"If-Match": `"1"`}
	if resp := f.callH(t, "PUT", "/admin/routes/products/canary", operatorToken, `{"percent":40,"reason":"b"}`, nil, h); resp.StatusCode != 200 {
		t.Fatalf("first writer at version 1: %d", resp.StatusCode)
	}
	var body struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Details ConflictDetails `json:"details"`
	}
	resp := f.callH(t, "POST", "/admin/routes/products/pin", operatorToken, `{"backend":"new","reason":"c"}`, &body, h)
	if resp.StatusCode != 409 || body.Code != CodeStateConflict || body.Details.Current.CanaryPercent != 40 ||
		body.Details.Current.Version != 2 || body.Details.StateVersion != 2 || body.Details.Expected != 1 {
		t.Fatalf("stale writer: %d %+v", resp.StatusCode, body)
	}
	if st, _ := f.engine.State("products"); st.Pinned != "" || st.Canary != 40 {
		t.Fatalf("the stale write was applied: %+v", st)
	}
	if resp := f.callH(t, "POST", "/admin/routes/products/pin", operatorToken, `{"backend":"new","reason":"c"}`, nil, map[string]string{"If-Match": "2"}); resp.StatusCode != 200 {
		t.Fatalf("retry with the current version: %d", resp.StatusCode)
	}
	var bad apierr.Body
	if resp := f.callH(t, "POST", "/admin/routes/products/resume", operatorToken, `{"reason":"c"}`, &bad, map[string]string{"If-Match": "yesterday"}); resp.StatusCode != 400 || bad.Code != CodeValidation {
		t.Fatalf("malformed If-Match: %d %+v", resp.StatusCode, bad)
	}
}

func TestSettingTheLiveValueIsANoOp(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var res ChangeResult
	// 25 is the configuration's value: nothing to store, nothing to audit.
	if resp := f.call(t, "PUT", "/admin/routes/products/canary", operatorToken, `{"percent":25,"reason":"same"}`, &res); resp.StatusCode != 200 || res.Changed {
		t.Fatalf("no-op canary: %d %+v", resp.StatusCode, res)
	}
	f.call(t, "PUT", "/admin/routes/products/canary", operatorToken, `{"percent":35,"reason":"up"}`, nil)
	if resp := f.call(t, "PUT", "/admin/routes/products/canary", operatorToken, `{"percent":35,"reason":"again"}`, &res); resp.StatusCode != 200 || res.Changed || res.StateVersion != 1 {
		t.Fatalf("repeat: %d %+v", resp.StatusCode, res)
	}
	if resp := f.call(t, "POST", "/admin/routes/products/resume", operatorToken, `{"reason":"not pinned"}`, &res); resp.StatusCode != 200 || res.Changed {
		t.Fatalf("resume of an unpinned route: %+v", res)
	}
	if got := f.audit(t); len(got) != 1 {
		t.Fatalf("%d audit entries; want only the one real change", len(got))
	}
}

func TestAReplicaFollowsAnotherThroughTheSharedStore(t *testing.T) {
	t.Parallel()
	a := newFixture(t)
	// Replica b: its own engine and store handle on the same file.
	storeB, err := controlplane.OpenSQLite(testCtx(t), a.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer storeB.Close()
	engB, _ := decide.NewEngine(a.cfg, nil, nil, nil)
	b, err := New(Options{Engine: engB, Store: storeB, SyncInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Restore(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	a.call(t, "PUT", "/admin/routes/products/canary", operatorToken, `{"percent":70,"reason":"r"}`, nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if st, _ := engB.State("products"); st.Canary == 70 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replica b never applied replica a's change")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReportsSitBehindAuth checks that report endpoints added by other
// packages get the same authentication and the read scope.
func TestReportsSitBehindAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if r := f.call(t, "GET", "/admin/retire", "", "", nil); r.StatusCode != 401 {
		t.Fatalf("no token: %d, want 401", r.StatusCode)
	}
	if r := f.call(t, "GET", "/admin/retire", writerToken, "", nil); r.StatusCode != 403 {
		t.Fatalf("write-only token: %d, want 403", r.StatusCode)
	}
	var got map[string]string
	if r := f.call(t, "GET", "/admin/retire/products", viewerToken, "", &got); r.StatusCode != 200 || got["path"] != "/admin/retire/products" {
		t.Fatalf("viewer: %d %v", r.StatusCode, got)
	}
	if r := f.call(t, "POST", "/admin/retire", operatorToken, "{}", nil); r.StatusCode != 405 {
		t.Fatalf("POST to a report: %d, want 405", r.StatusCode)
	}
}
