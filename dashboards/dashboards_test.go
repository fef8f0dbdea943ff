package dashboards

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ficus-gw/ficus/acl/backend"
	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway"
	"github.com/ficus-gw/ficus/gateway/controlplane"
	"github.com/ficus-gw/ficus/gateway/decide"
	"github.com/ficus-gw/ficus/gateway/retire"
	"github.com/ficus-gw/ficus/gateway/rollout"
	"github.com/ficus-gw/ficus/gateway/shadow"
	"github.com/ficus-gw/ficus/internal/svcmetrics"
	"github.com/ficus-gw/ficus/legacy"
	"github.com/ficus-gw/ficus/newsvc/catalog"
	"github.com/ficus-gw/ficus/newsvc/order"
	"go.yaml.in/yaml/v3"
)

// exported is every metric the gateway declares, by its constant: the
// dashboards and rules may use these, the pending ones, and their own
// recording rules — nothing else.
func exported() map[string]bool {
	names := []string{
		gateway.MetricRequests, gateway.MetricRequestDuration, gateway.MetricUpstreamErrors,
		gateway.MetricDecisions, gateway.MetricFallbacks, gateway.MetricBreakerState,
		gateway.MetricRetries, gateway.MetricRateLimited, gateway.MetricInFlight,
		decide.MetricOverrideRejected, decide.MetricCanaryPercent, decide.MetricFlagErrors,
		decide.MetricFlagCacheLookups, decide.MetricFlagCacheFlushes,
		shadow.MetricRequests, shadow.MetricFieldDiffs, shadow.MetricDuration, shadow.MetricInFlight,
		shadow.MetricExpiredRules, retire.MetricLastHit, gateway.MetricIntents,
		rollout.MetricPhase, rollout.MetricStepPercent, rollout.MetricGateChecks, rollout.MetricRollbacks,
		gateway.MetricRequestBytes, gateway.MetricResponseBytes, gateway.MetricOpenConnections,
		gateway.MetricConfigReloads, decide.MetricFlagReloadErrors,
		controlplane.MetricStateVersion, controlplane.MetricConnected, controlplane.MetricLastSync,
		controlplane.MetricLeader,
		// every process, and the services behind the gateway
		svcmetrics.MetricBuildInfo, svcmetrics.MetricRequests, svcmetrics.MetricRequestDuration,
		order.MetricPlaced, order.MetricReplays, order.MetricCatalogCalls, order.MetricBreakerOpen,
		order.MetricRepairs, backend.MetricLegacyErrors, backend.MetricIdempotentReplay,
		legacy.MetricFaultsInjected, catalog.MetricStockAdjustments, catalog.MetricRateLimited,
	}
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

func allExprs(t *testing.T) []Expr {
	t.Helper()
	ex, err := Expressions(Files())
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func TestEveryMetricNameIsDeclaredByTheGatewayOrPending(t *testing.T) {
	t.Parallel()
	ex := allExprs(t)
	known := exported()
	pending := map[string]bool{}
	for _, p := range PendingMetrics() {
		if known[p] {
			t.Logf("%s is now exported by the gateway: remove it from PendingMetrics", p)
		}
		pending[p] = true
	}
	all := map[string]bool{}
	for n := range known {
		all[n] = true
	}
	for n := range pending {
		all[n] = true
	}
	records := map[string]bool{}
	for _, e := range ex {
		if e.Kind == KindRecording {
			records[e.Name] = true
		}
	}
	used := map[string]bool{}
	for _, e := range ex {
		for _, n := range MetricNames(Substitute(e.PromQL, grafanaDefaults("x"))) {
			if strings.Contains(n, ":") {
				if !records[n] {
					t.Errorf("%s uses recording rule %s, which no rule file defines", e, n)
				}
				continue
			}
			base := BaseMetric(n, all)
			if !all[base] {
				t.Errorf("%s uses %s: not a gateway metric constant nor pending (typo?)", e, n)
			}
			used[base] = true
		}
	}
	for n := range known {
		if !used[n] {
			t.Errorf("metric %s is shown by no panel and read by no rule", n)
		}
	}
	if len(ex) < 40 {
		t.Errorf("found only %d expressions; the extractor lost some", len(ex))
	}
}

func grafanaDefaults(route string) map[string]string {
	return map[string]string{"route": route, "__rate_interval": "1m", "__range": "5m", "__interval": "10s",
		"environment": ".*", "job": ".*", "instance": ".*"}
}

func loadDashboards(t *testing.T) map[string]*Dashboard {
	t.Helper()
	files, err := fs.Glob(Files(), "grafana/*.json")
	if err != nil || len(files) != 2 {
		t.Fatalf("dashboards: %v %v", files, err)
	}
	out := map[string]*Dashboard{}
	for _, f := range files {
		b, err := fs.ReadFile(Files(), f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := ParseDashboard(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = d
	}
	return out
}

// TestDashboardsImportAnywhere holds the properties that make a dashboard
// importable into any Grafana with any Prometheus: current schema, the
// datasource chosen by a variable, unique ids, panels that do not overlap.
func TestDashboardsImportAnywhere(t *testing.T) {
	t.Parallel()
	uids := map[string]string{}
	for f, d := range loadDashboards(t) {
		t.Run(f, func(t *testing.T) {
			if d.SchemaVersion < 39 {
				t.Errorf("schemaVersion %d, want 39 or later", d.SchemaVersion)
			}
			if d.UID == "" || d.Title == "" {
				t.Errorf("uid %q title %q: both required for provisioning", d.UID, d.Title)
			}
			if other, dup := uids[d.UID]; dup {
				t.Errorf("uid %s also used by %s", d.UID, other)
			}
			uids[d.UID] = f
			var dsVar bool
			for _, v := range d.Templating.List {
				if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
					dsVar = true
				}
			}
			if !dsVar {
				t.Error("no template variable 'datasource' of type datasource/prometheus")
			}
			ids := map[int]bool{}
			type cell struct{ x, y int }
			taken := map[cell]string{}
			for _, p := range d.AllPanels() {
				if ids[p.ID] {
					t.Errorf("panel id %d used twice", p.ID)
				}
				ids[p.ID] = true
				g := p.GridPos
				if g.W <= 0 || g.H <= 0 || g.X+g.W > 24 {
					t.Errorf("panel %q: bad gridPos %+v", p.Title, g)
				}
			cells:
				for x := g.X; x < g.X+g.W; x++ {
					for y := g.Y; y < g.Y+g.H; y++ {
						if o, ok := taken[cell{x, y}]; ok {
							t.Errorf("panel %q overlaps %q at %d,%d", p.Title, o, x, y)
							break cells
						}
						taken[cell{x, y}] = p.Title
					}
				}
				if p.Type == "row" {
					continue
				}
				if p.Description == "" {
					t.Errorf("panel %q has no description (shown as the panel's help)", p.Title)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
				if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
					t.Errorf("panel %q datasource %+v, want prometheus ${datasource}", p.Title, p.Datasource)
				}
				for _, tg := range p.Targets {
					if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
						t.Errorf("panel %q query %s: datasource %+v, want ${datasource}", p.Title, tg.RefID, tg.Datasource)
					}
				}
			}
		})
	}
}

func TestBothDashboardsAnnotateAuditLogChanges(t *testing.T) {
	t.Parallel()
	for f, d := range loadDashboards(t) {
		t.Run(f, func(t *testing.T) {
			var found bool
			for _, a := range d.Annotations.List {
				if a.Datasource == nil || a.Datasource.Type != "yesoreyeram-infinity-datasource" {
					continue
				}
				found = true
				if !a.Enable {
					t.Error("audit annotation is disabled by default")
				}
				if a.Target["url"] != "/admin/annotations" || a.Target["type"] != "json" {
					t.Errorf("annotation target %v, want the JSON of /admin/annotations", a.Target)
				}
				if a.Datasource.UID != "${admin_api}" {
					t.Errorf("annotation datasource uid %q, want the ${admin_api} variable", a.Datasource.UID)
				}
				params := fmt.Sprint(a.Target["url_options"])
				for _, want := range []string{"${__from}", "${__to}"} {
					if !strings.Contains(params, want) {
						t.Errorf("annotation does not pass %s to the admin API: %s", want, params)
					}
				}
				if strings.Contains(f, "route-detail") && !strings.Contains(params, "${route}") {
					t.Errorf("route detail annotations are not filtered by ${route}: %s", params)
				}
			}
			if !found {
				t.Error("no Infinity annotation of the audit log")
			}
		})
	}
}

func TestRouteDetailIsTemplatedByRoute(t *testing.T) {
	t.Parallel()
	d := loadDashboards(t)["grafana/route-detail.json"]
	var routeVar *Variable
	for i, v := range d.Templating.List {
		if v.Name == "route" {
			routeVar = &d.Templating.List[i]
		}
	}
	if routeVar == nil {
		t.Fatal("no route variable")
	}
	if q := fmt.Sprint(routeVar.Query); !strings.Contains(q, "label_values(ficus_requests_total{") || !strings.HasSuffix(strings.TrimSpace(routeVar.Definition), ", route)") {
		t.Errorf("route variable query %s", q)
	}
	if !routeVar.Multi || !routeVar.IncludeAll {
		t.Errorf("route variable is not multi-select with All: %+v", routeVar)
	}
	for _, p := range d.AllPanels() {
		for _, tg := range p.Targets {
			// Breakers belong to upstreams, not routes.
			if strings.Contains(tg.Expr, "ficus_breaker_state") {
				continue
			}
			if !strings.Contains(tg.Expr, `route=~"$route"`) {
				t.Errorf("panel %q query %s ignores the selected route: %s", p.Title, tg.RefID, tg.Expr)
			}
		}
	}
}

// TestAlertsCarryRunbooks: every alert names a severity and a runbook anchor
// that exists in docs/dashboards.md.
func TestAlertsCarryRunbooks(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/dashboards.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+\s+(.+)$`).FindAllStringSubmatch(string(doc), -1) {
		anchors[githubAnchor(m[1])] = true
	}
	b, err := fs.ReadFile(Files(), "prometheus/rules/ficus.alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	rf, err := ParseRules(b)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if s := r.Labels["severity"]; s != "page" && s != "ticket" {
				t.Errorf("%s: severity %q, want page or ticket", r.Alert, s)
			}
			want := "docs/dashboards.md#" + strings.ToLower(r.Alert)
			if r.Annotations["runbook_url"] != want {
				t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
			}
			if !anchors[strings.ToLower(r.Alert)] {
				t.Errorf("%s: docs/dashboards.md has no heading %q", r.Alert, r.Alert)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: summary and description are required", r.Alert)
			}
		}
	}
	if n < 5 {
		t.Errorf("%d alerts, want at least 5", n)
	}
}

func githubAnchor(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// TestScrapeConfigPointsAtTheDemoAdminListener: the committed Prometheus
// configuration scrapes where `ficus demo` serves /metrics and loads every
// rule file.
// TestScrapeConfigScrapesTheDemo: one job per kind of process, each at the
// demo's metrics listener, every target labelled with its environment.
func TestScrapeConfigScrapesTheDemo(t *testing.T) {
	t.Parallel()
	cfg, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var pc struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string          `yaml:"targets"`
				Labels  map[string]string `yaml:"labels"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &pc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ficus-gateway": cfg.Admin.Listen,
		"ficus-legacy":  "127.0.0.1:8087", // ficus legacy --metrics-listen, not the shop's port
		"ficus-catalog": strings.TrimPrefix(cfg.Upstreams["catalog"].URL, "http://"),
		"ficus-orders":  strings.TrimPrefix(cfg.Upstreams["orders"].URL, "http://"),
		"ficus-acl":     strings.TrimPrefix(cfg.Upstreams["acl"].URL, "http://"),
	}
	got := map[string]string{}
	for _, sc := range pc.ScrapeConfigs {
		if sc.MetricsPath != "/metrics" || len(sc.StaticConfigs) != 1 || len(sc.StaticConfigs[0].Targets) != 1 {
			t.Errorf("job %s: %+v, want one target at /metrics", sc.JobName, sc)
			continue
		}
		if sc.StaticConfigs[0].Labels["environment"] == "" {
			t.Errorf("job %s has no environment label (the dashboards' $environment)", sc.JobName)
		}
		got[sc.JobName] = sc.StaticConfigs[0].Targets[0]
	}
	if !maps.Equal(got, want) {
		t.Errorf("scrape jobs %v, want %v", got, want)
	}
	rules, _ := fs.Glob(Files(), "prometheus/rules/*.yml")
	for _, r := range rules {
		if !slices.Contains(pc.RuleFiles, strings.TrimPrefix(r, "prometheus/")) {
			t.Errorf("prometheus.yml does not load %s", r)
		}
	}
}

// TestPanelsFollowTheFleetVariables: both dashboards have multi-select
// environment, job and instance variables, and every selector of a raw
// ficus_* metric in a panel honours all three, so a fleet is never summed
// together by accident.
func TestPanelsFollowTheFleetVariables(t *testing.T) {
	t.Parallel()
	// a recording rule (route_backend:ficus_...:ratio) is fleet-wide already
	sel := regexp.MustCompile(`(?:^|[^:\w])ficus_\w+(:|\{[^}]*\})?`)
	for file, d := range loadDashboards(t) {
		vars := map[string]Variable{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v
		}
		for _, name := range []string{"environment", "job", "instance"} {
			if v, ok := vars[name]; !ok || !v.Multi || !v.IncludeAll {
				t.Errorf("%s: variable %s missing or not multi-select with All: %+v", file, name, v)
			}
		}
		for _, p := range d.AllPanels() {
			for _, tg := range p.Targets {
				for _, m := range sel.FindAllStringSubmatch(tg.Expr, -1) {
					if m[1] == ":" {
						continue
					}
					for _, want := range []string{`environment=~"$environment"`, `job=~"$job"`, `instance=~"$instance"`} {
						if !strings.Contains(m[1], want) {
							t.Errorf("%s: panel %q query %s: %s lacks %s", file, p.Title, tg.RefID, m[0], want)
						}
					}
				}
			}
		}
	}
}

func TestMetricNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`ficus_requests_total`, []string{"ficus_requests_total"}},
		{`sum by (route, backend) (rate(ficus_requests_total{code=~"5.."}[5m]))`, []string{"ficus_requests_total"}},
		{`histogram_quantile(0.99, sum by (backend, le) (rate(x_bucket{a="b}"}[1m])))`, []string{"x_bucket"}},
		{`a:b:rate5m / 0.005 > (14.4 * 0.005) and on (route) c offset 5m`, []string{"a:b:rate5m", "c"}},
		{`max_over_time(ficus_breaker_state[1m]) == 2`, []string{"ficus_breaker_state"}},
		{`time() - max by (route) (m)`, []string{"m"}},
		{`sum without (instance) (x) / ignoring (code) group_left (team) y`, []string{"x", "y"}},
		{`count by (route) (ficus_requests_total) # a comment naming not_a_metric`, []string{"ficus_requests_total"}},
		{`rate(m{route="$route"}[$__rate_interval]) * 1e3`, []string{"m"}},
		{`sum(rate(m[5m:30s])) or vector(0)`, []string{"m"}},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			t.Parallel()
			if got := MetricNames(tc.expr); !slices.Equal(got, tc.want) {
				t.Errorf("MetricNames(%q) = %v, want %v", tc.expr, got, tc.want)
			}
		})
	}
}

func TestSubstitute(t *testing.T) {
	t.Parallel()
	vars := grafanaDefaults("products")
	for _, tc := range []struct{ in, want string }{
		{`rate(m{route="$route"}[$__rate_interval])`, `rate(m{route="products"}[1m])`},
		{`m{route="${route}"}[${__range}]`, `m{route="products"}[5m]`},
		{`m{route="${route:raw}"}`, `m{route="products"}`},
		{`m{route="[[route]]"}`, `m{route="products"}`},
		{`m{x="$unknown"}`, `m{x="$unknown"}`},
		{`m{x="$route_name"}`, `m{x="$route_name"}`},
	} {
		if got := Substitute(tc.in, vars); got != tc.want {
			t.Errorf("Substitute(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Variables(`a{r="$route"}[$__rate_interval] ${route}`); !slices.Equal(got, []string{"__rate_interval", "route"}) {
		t.Errorf("Variables = %v", got)
	}
}

func TestSourceMetricsResolvesRecordingRules(t *testing.T) {
	t.Parallel()
	ex := allExprs(t)
	got := SourceMetrics([]string{"route:ficus_shadow_diff:ratio_rate5m", "ficus_breaker_state"}, ex)
	if want := []string{"ficus_breaker_state", "ficus_shadow_requests_total"}; !slices.Equal(got, want) {
		t.Errorf("SourceMetrics = %v, want %v", got, want)
	}
}

func TestExpressionsFailOnBrokenFiles(t *testing.T) {
	t.Parallel()
	for name, files := range map[string]map[string]string{
		"dashboard not JSON": {"grafana/x.json": "{", "prometheus/rules/r.yml": "groups: []"},
		"rules not YAML":     {"grafana/x.json": "{}", "prometheus/rules/r.yml": "groups: ["},
		"variable without query": {"grafana/x.json": `{"templating":{"list":[{"name":"v","type":"query","datasource":{"type":"prometheus"}}]}}`,
			"prometheus/rules/r.yml": "groups: []"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fsys := mapFS(files)
			if _, err := Expressions(fsys); err == nil {
				t.Error("no error")
			}
		})
	}
}

func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, body := range files {
		m[name] = &fstest.MapFile{Data: []byte(body)}
	}
	return m
}
