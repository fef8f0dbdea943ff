package dashboards

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	grafana "github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// registerPlugins makes the SDK's panel and datasource types known to its
// strict decoder (panel options and field config by panel type).
var registerPlugins = sync.OnceFunc(plugins.RegisterDefaultPlugins)

// CheckSchema checks one dashboard's JSON against the Grafana dashboard
// schema as grafana-foundation-sdk v0.0.22 generates it, strictly: an
// unknown or misspelt field at any depth (including a panel's options and
// field config, by panel type), a missing required field or a wrong type
// is an error. On top, the rules the generated types do not hold:
//
//   - the dashboard and every panel has a non-empty title;
//   - every panel type is one Grafana ships (or "row");
//   - every thresholds mode is "absolute" or "percentage";
//   - panel ids are unique;
//   - every panel lies inside the 24-column grid and overlaps no other;
//   - every $variable a query uses is defined (or built in).
//
// It returns every problem found, each naming where; nil means clean.
func CheckSchema(b []byte) []error {
	registerPlugins()
	var errs []error
	// The v1 dashboard is the JSON model Grafana imports and exports
	// (schemaVersion 41), which these files are; v2 is a different format.
	//lint:ignore SA1019 the files are v1 dashboards by design
	var d grafana.Dashboard
	if err := d.UnmarshalJSONStrict(b); err != nil {
		errs = append(errs, flatten("schema", err)...)
	} else if err := d.Validate(); err != nil {
		errs = append(errs, flatten("schema", err)...)
	}
	var raw struct {
		Title      *string          `json:"title"`
		Panels     []map[string]any `json:"panels"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return append(errs, fmt.Errorf("json: %w", err))
	}
	if raw.Title == nil || strings.TrimSpace(*raw.Title) == "" {
		errs = append(errs, errors.New("title: the dashboard has no title"))
	}
	vars := map[string]bool{}
	for _, v := range raw.Templating.List {
		vars[v.Name] = true
	}
	var panels []map[string]any
	for _, p := range raw.Panels {
		panels = append(panels, p)
		if sub, ok := p["panels"].([]any); ok { // a collapsed row's panels
			for _, sp := range sub {
				if m, ok := sp.(map[string]any); ok {
					panels = append(panels, m)
				}
			}
		}
	}
	ids := map[float64]string{}
	var boxes []box
	for i, p := range panels {
		where := fmt.Sprintf("panels[%d]", i)
		title, _ := p["title"].(string)
		if strings.TrimSpace(title) == "" {
			errs = append(errs, fmt.Errorf("%s: panel has no title", where))
		} else {
			where += " (" + title + ")"
		}
		typ, _ := p["type"].(string)
		if typ != "row" {
			if _, ok := cog.ConfigForPanelcfgVariant(typ); !ok {
				errs = append(errs, fmt.Errorf("%s: unknown panel type %q", where, typ))
			}
		}
		if id, ok := p["id"].(float64); ok {
			if other, dup := ids[id]; dup {
				errs = append(errs, fmt.Errorf("%s: panel id %v is also used by %s", where, id, other))
			}
			ids[id] = where
		}
		for _, m := range thresholdModes(p) {
			if m != "absolute" && m != "percentage" {
				errs = append(errs, fmt.Errorf("%s: thresholds mode %q (want absolute or percentage)", where, m))
			}
		}
		if g, ok := p["gridPos"].(map[string]any); ok {
			bx := box{where: where, x: num(g["x"]), y: num(g["y"]), w: num(g["w"]), h: num(g["h"])}
			if bx.x < 0 || bx.y < 0 || bx.w < 1 || bx.h < 1 || bx.x+bx.w > 24 {
				errs = append(errs, fmt.Errorf("%s: gridPos %v lies outside the 24-column grid", where, g))
			}
			for _, o := range boxes {
				if bx.overlaps(o) {
					errs = append(errs, fmt.Errorf("%s: gridPos overlaps %s", where, o.where))
				}
			}
			boxes = append(boxes, bx)
		}
		targets, _ := p["targets"].([]any)
		for _, t := range targets {
			tm, _ := t.(map[string]any)
			expr, _ := tm["expr"].(string)
			for _, v := range Variables(expr) {
				if !vars[v] && !strings.HasPrefix(v, "__") {
					errs = append(errs, fmt.Errorf("%s: query %v uses $%s, which no variable defines", where, tm["refId"], v))
				}
			}
		}
	}
	return errs
}

// flatten splits the SDK's error list (one line per problem) into errors.
func flatten(prefix string, err error) []error {
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		return nil
	}
	var out []error
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, fmt.Errorf("%s: %s", prefix, line))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Error() < out[j].Error() })
	return slices.CompactFunc(out, func(a, b error) bool { return a.Error() == b.Error() })
}

// thresholdModes returns the thresholds modes of a panel's field defaults
// and overrides.
func thresholdModes(p map[string]any) []string {
	var modes []string
	fc, _ := p["fieldConfig"].(map[string]any)
	if d, ok := fc["defaults"].(map[string]any); ok {
		if th, ok := d["thresholds"].(map[string]any); ok {
			if m, ok := th["mode"].(string); ok {
				modes = append(modes, m)
			}
		}
	}
	ovs, _ := fc["overrides"].([]any)
	for _, o := range ovs {
		om, _ := o.(map[string]any)
		props, _ := om["properties"].([]any)
		for _, pr := range props {
			pm, _ := pr.(map[string]any)
			if pm["id"] != "thresholds" {
				continue
			}
			if v, ok := pm["value"].(map[string]any); ok {
				if m, ok := v["mode"].(string); ok {
					modes = append(modes, m)
				}
			}
		}
	}
	return modes
}

type box struct {
	where      string
	x, y, w, h float64
}

func (a box) overlaps(b box) bool {
	return a.x < b.x+b.w && b.x < a.x+a.w && a.y < b.y+b.h && b.y < a.y+a.h
}

func num(v any) float64 {
	f, ok := v.(float64)
	if !ok {
		return -1
	}
	return f
}
