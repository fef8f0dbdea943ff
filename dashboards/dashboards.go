// Package dashboards holds Ficus's operator artefacts as files — Grafana
// dashboards, Grafana provisioning, the Prometheus scrape configuration,
// recording and alert rules — and reads every PromQL expression out of them,
// so that a test can hold their metric names to the gateway's constants and
// a check can run each expression against a real Prometheus.
//
// The files are the product; this package only embeds and inspects them.
package dashboards

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed grafana/*.json prometheus/rules/*.yml
var artefacts embed.FS

// Files returns the embedded dashboards (grafana/*.json) and rule files
// (prometheus/rules/*.yml), read-only.
func Files() fs.FS { return artefacts }

// PendingMetrics returns the metric names the dashboards and rules already
// use but the gateway does not export yet (shadow traffic, the retirement
// tracker). A check reports an expression over one of them as pending rather
// than failed, unless it runs strict. Remove a name once it is exported.
func PendingMetrics() []string {
	return nil
}

// Kind says where an expression comes from.
type Kind string

// Kinds of expression.
const (
	KindPanel     Kind = "panel"     // a query of a dashboard panel
	KindVariable  Kind = "variable"  // a template variable's label_values query, as PromQL
	KindRecording Kind = "recording" // a recording rule
	KindAlert     Kind = "alert"     // an alert rule
)

// Expr is one PromQL expression found in the artefacts.
type Expr struct {
	// File is the artefact's path inside Files, e.g. "grafana/route-detail.json".
	File string
	Kind Kind
	// Name is the panel title and query refId, the variable name, or the
	// rule's record/alert name.
	Name string
	// PromQL is the expression as written, Grafana variables included.
	PromQL string
}

// String names the expression for a report line.
func (e Expr) String() string { return fmt.Sprintf("%s %s %q", e.File, e.Kind, e.Name) }

// Expressions returns every PromQL expression of every dashboard panel,
// every Prometheus-backed template variable and every rule in fsys (laid out
// like Files), in a stable order: dashboards first, then rules.
func Expressions(fsys fs.FS) ([]Expr, error) {
	var out []Expr
	boards, err := fs.Glob(fsys, "grafana/*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(boards)
	for _, f := range boards {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		ex, err := dashboardExprs(f, b)
		if err != nil {
			return nil, err
		}
		out = append(out, ex...)
	}
	rules, err := fs.Glob(fsys, "prometheus/rules/*.yml")
	if err != nil {
		return nil, err
	}
	sort.Strings(rules)
	for _, f := range rules {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		ex, err := ruleExprs(f, b)
		if err != nil {
			return nil, err
		}
		out = append(out, ex...)
	}
	return out, nil
}

// Dashboard is the part of a Grafana dashboard this package reads.
type Dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []Panel `json:"panels"`
	Templating    struct {
		List []Variable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []Annotation `json:"list"`
	} `json:"annotations"`
}

// Panel is a dashboard panel (rows carry their collapsed panels inside).
type Panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  *DatasourceRef `json:"datasource"`
	GridPos     struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []Target `json:"targets"`
	Panels  []Panel  `json:"panels"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource *DatasourceRef `json:"datasource"`
}

// DatasourceRef names a datasource by type and uid (often a variable).
type DatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Variable is a template variable.
type Variable struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Query      any            `json:"query"`
	Definition string         `json:"definition"`
	Multi      bool           `json:"multi"`
	IncludeAll bool           `json:"includeAll"`
	Datasource *DatasourceRef `json:"datasource"`
}

// Annotation is an annotation definition.
type Annotation struct {
	Name       string         `json:"name"`
	BuiltIn    int            `json:"builtIn"`
	Enable     bool           `json:"enable"`
	Datasource *DatasourceRef `json:"datasource"`
	Target     map[string]any `json:"target"`
}

// ParseDashboard decodes a dashboard's JSON.
func ParseDashboard(b []byte) (*Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// AllPanels flattens rows: every panel, including those inside collapsed rows.
func (d *Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

func dashboardExprs(file string, b []byte) ([]Expr, error) {
	d, err := ParseDashboard(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var out []Expr
	for _, v := range d.Templating.List {
		if v.Type != "query" || v.Datasource == nil || v.Datasource.Type != "prometheus" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		// label_values(m, l) lists the values of l on m's series: it finds
		// something exactly when this PromQL returns a series.
		if sm := labelValuesRE.FindStringSubmatch(q); sm != nil {
			q = fmt.Sprintf("count by (%s) (%s)", sm[2], sm[1])
		}
		if q == "" {
			return nil, fmt.Errorf("%s: variable %q has no query", file, v.Name)
		}
		out = append(out, Expr{File: file, Kind: KindVariable, Name: v.Name, PromQL: q})
	}
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			if strings.TrimSpace(t.Expr) == "" {
				continue
			}
			out = append(out, Expr{File: file, Kind: KindPanel, Name: p.Title + " (" + t.RefID + ")", PromQL: t.Expr})
		}
	}
	return out, nil
}

// RuleFile is a Prometheus rule file.
type RuleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []Rule `yaml:"rules"`
	} `yaml:"groups"`
}

// Rule is a recording or alert rule.
type Rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// ParseRules decodes a rule file.
func ParseRules(b []byte) (*RuleFile, error) {
	var rf RuleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		return nil, err
	}
	return &rf, nil
}

func ruleExprs(file string, b []byte) ([]Expr, error) {
	rf, err := ParseRules(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var out []Expr
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			e := Expr{File: file, PromQL: strings.TrimSpace(r.Expr)}
			if r.Alert != "" {
				e.Kind, e.Name = KindAlert, r.Alert
			} else {
				e.Kind, e.Name = KindRecording, r.Record
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// Substitute replaces Grafana's variables in a panel expression — $name,
// ${name}, ${name:fmt} and [[name]] — with vars[name]. Unknown variables
// are left as they are, so that a missing value shows in the report
// instead of silently matching nothing.
func Substitute(expr string, vars map[string]string) string {
	return grafanaVarRE.ReplaceAllStringFunc(expr, func(m string) string {
		sm := grafanaVarRE.FindStringSubmatch(m)
		name := sm[1] + sm[2] + sm[3]
		if v, ok := vars[name]; ok {
			return v
		}
		return m
	})
}

var grafanaVarRE = regexp.MustCompile(`\$\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-zA-Z]+)?\}|\[\[([a-zA-Z_][a-zA-Z0-9_]*)\]\]|\$([a-zA-Z_][a-zA-Z0-9_]*)`)

// Variables returns the names of the Grafana variables expr uses, sorted.
func Variables(expr string) []string {
	seen := map[string]bool{}
	for _, sm := range grafanaVarRE.FindAllStringSubmatch(expr, -1) {
		seen[sm[1]+sm[2]+sm[3]] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// promqlWords are identifiers that are never metric names: keywords,
// aggregation operators and modifiers, and set operators.
var promqlWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "atan2": true,
	"inf": true, "nan": true,
	// aggregations may put their modifier before the parenthesis:
	// sum by (route) (...)
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
}

// MetricNames returns the metric names a PromQL expression selects, sorted
// and without duplicates. It is a small lexer, not a parser: it skips
// strings, label matchers, range and subquery brackets, function names
// (identifiers followed by "(") and the label lists of by/without/on/
// ignoring/group_left/group_right. Grafana variables must be substituted
// first or they are skipped like any "$" text.
func MetricNames(expr string) []string {
	seen := map[string]bool{}
	s := expr
	skipList := false // the next "(...)" is a label list
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(s, i)
		case c == '{':
			i = skipTo(s, i, '}')
		case c == '[':
			i = skipTo(s, i, ']')
		case c == '$':
			i++
			for i < len(s) && (isIdent(s[i]) || s[i] == '{' || s[i] == '}' || s[i] == ':') {
				i++
			}
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '(' && skipList:
			i = skipTo(s, i, ')')
			skipList = false
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r') {
				k++
			}
			lw := strings.ToLower(word)
			switch {
			case lw == "by" || lw == "without" || lw == "on" || lw == "ignoring" || lw == "group_left" || lw == "group_right":
				skipList = true
			case promqlWords[lw]:
			case k < len(s) && s[k] == '(':
				// a function or aggregation
			case i > 0 && isDigit(s[i-1]):
				// a duration or exponent suffix (5m, 1e3)
			default:
				seen[word] = true
			}
			i = j
		case isDigit(c) || c == '.':
			for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
				i++
			}
		default:
			i++
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func skipString(s string, i int) int {
	q := s[i]
	for i++; i < len(s); i++ {
		if s[i] == '\\' && q != '`' {
			i++
			continue
		}
		if s[i] == q {
			return i + 1
		}
	}
	return len(s)
}

// skipTo returns the index after the close byte matching s[i], skipping
// strings inside.
func skipTo(s string, i int, close byte) int {
	for i++; i < len(s); i++ {
		switch s[i] {
		case '"', '\'', '`':
			i = skipString(s, i) - 1
		case close:
			return i + 1
		}
	}
	return len(s)
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}
func isIdent(c byte) bool { return isIdentStart(c) || isDigit(c) }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// BaseMetric maps a histogram's series name (_bucket, _sum, _count) to the
// metric's name when that name is in known; other names are returned as
// they are.
func BaseMetric(name string, known map[string]bool) string {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, suf); ok && known[b] {
			return b
		}
	}
	return name
}

// SourceMetrics resolves recording-rule names in names (those with a ":")
// to the metrics their rules read, recursively, using the rules in exprs.
// The result holds only raw metric names, sorted.
func SourceMetrics(names []string, exprs []Expr) []string {
	rec := map[string]string{}
	for _, e := range exprs {
		if e.Kind == KindRecording {
			rec[e.Name] = e.PromQL
		}
	}
	seen := map[string]bool{}
	var walk func(n string, depth int)
	walk = func(n string, depth int) {
		if q, ok := rec[n]; ok && depth < 16 {
			for _, m := range MetricNames(q) {
				walk(m, depth+1)
			}
			return
		}
		seen[n] = true
	}
	for _, n := range names {
		walk(n, 0)
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
