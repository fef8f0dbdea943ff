package dashboards

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommittedDashboardsPassTheSchemaCheck(t *testing.T) {
	t.Parallel()
	files, err := fs.Glob(Files(), "grafana/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("dashboards: %v %v", files, err)
	}
	for _, f := range files {
		b, err := fs.ReadFile(Files(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range CheckSchema(b) {
			t.Errorf("%s: %v", f, e)
		}
	}
}

// seeded are the mistakes the schema check must catch, each committed as a
// copy of route-detail.json with that one mistake (testdata/seeded/;
// rewritten by -update).
var seeded = []struct {
	name   string
	mutate func(d map[string]any)
	want   string
}{
	{"misspelled-gridpos", func(d map[string]any) {
		p := panel(d, 1)
		p["gridPoss"] = p["gridPos"]
		delete(p, "gridPos")
	}, "unexpected field 'gridPoss'"},
	{"renamed-panels", func(d map[string]any) {
		d["panelz"] = d["panels"]
		delete(d, "panels")
	}, "unexpected field 'panelz'"},
	{"unknown-panel-type", func(d map[string]any) { panel(d, 1)["type"] = "timeseriez" }, `unknown panel type "timeseriez"`},
	{"bad-threshold-mode", func(d map[string]any) {
		panel(d, 1)["fieldConfig"].(map[string]any)["defaults"].(map[string]any)["thresholds"].(map[string]any)["mode"] = "absolut"
	}, `thresholds mode "absolut"`},
	{"deleted-title", func(d map[string]any) { delete(d, "title") }, "the dashboard has no title"},
	// three more
	{"duplicate-panel-id", func(d map[string]any) { panel(d, 2)["id"] = panel(d, 1)["id"] }, "is also used by"},
	{"panel-off-the-grid", func(d map[string]any) {
		panel(d, 1)["gridPos"].(map[string]any)["w"] = 30
	}, "outside the 24-column grid"},
	{"undefined-variable", func(d map[string]any) {
		t := panel(d, 1)["targets"].([]any)[0].(map[string]any)
		t["expr"] = strings.Replace(t["expr"].(string), `"$route"`, `"$rout"`, 1)
	}, "uses $rout"},
	{"wrong-field-type", func(d map[string]any) { d["refresh"] = 10 }, "refresh"},
}

func panel(d map[string]any, i int) map[string]any { return d["panels"].([]any)[i].(map[string]any) }

func TestSeededMistakesAreCaught(t *testing.T) {
	t.Parallel()
	base, err := fs.ReadFile(Files(), "grafana/route-detail.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range seeded {
		path := filepath.Join("testdata", "seeded", s.name+".json")
		// The committed file must be today's route-detail.json with the one
		// mistake: a copy of an older dashboard carries that version's own
		// problems too, and would be caught for them whatever the check
		// makes of the seeded mistake.
		var d map[string]any
		if err := json.Unmarshal(base, &d); err != nil {
			t.Fatal(err)
		}
		s.mutate(d)
		buf := encodeDashboard(t, d)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, buf, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run: go test ./dashboards -run 'TestDashboardsUpToDate|TestSeededMistakesAreCaught' -update)", err)
		}
		if !bytes.Equal(b, buf) {
			t.Errorf("%s is not route-detail.json with only its seeded mistake (run: go test ./dashboards -run TestSeededMistakesAreCaught -update)", path)
			continue
		}
		errs := CheckSchema(b)
		found := false
		for _, e := range errs {
			found = found || strings.Contains(e.Error(), s.want)
		}
		if !found {
			t.Errorf("%s: not caught (want an error containing %q), got %v", s.name, s.want, errs)
		}
		if len(errs) > 1 && !strings.Contains(errs[0].Error(), s.want) {
			t.Errorf("%s: the first problem reported is not the seeded one (%q): %v", s.name, s.want, errs)
		}
	}
}
