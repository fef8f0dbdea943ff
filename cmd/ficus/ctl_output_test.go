package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/admin"
	"github.com/ficus-gw/ficus/gateway/retire"
	"github.com/ficus-gw/ficus/gateway/shadow"
)

// startCtlGateway runs one gateway (legacy and new sides answered by test
// servers) with a flag file, for the ctl tests.
func startCtlGateway(t *testing.T) (adm, flagFile string) {
	t.Helper()
	dir := t.TempDir()
	flagFile = filepath.Join(dir, "flags.json")
	if err := os.WriteFile(flagFile, []byte(`{"flags":{"products-backend":{"state":"ENABLED","variants":{"legacy":"legacy","new":"new"},"defaultVariant":"legacy"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	legacy := side("legacy")
	t.Cleanup(legacy.Close)
	cfg, err := config.Parse([]byte(`
admin:
  tokens: [{name: operator, value: ` + fleetToken + `, scopes: [read, write]}]
upstreams:
  legacy: {url: ` + legacy.URL + `}
  catalog: {url: ` + legacy.URL + `, kind: new}
flags: {file: ` + flagFile + `}
routes:
  - {name: products, path: /api/v1/products/*, new: catalog, flag: products-backend}
  - {name: shop, path: /shop/*}
controlPlane: {sqlite: {path: ` + filepath.Join(dir, "cp.db") + `}}
shadow: {db: ` + filepath.Join(dir, "shadow.db") + `}
retire: {db: ` + filepath.Join(dir, "retire.db") + `}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0"
	g := newGroup(context.Background())
	t.Cleanup(func() { g.cancel(); _ = g.Wait() })
	r, err := startGateway(g, cfg, &environment{stdout: io.Discard, stderr: io.Discard, logLevel: new(slog.LevelVar)})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the gateway ready", func() bool { return ready(context.Background(), http.DefaultClient, "http://"+r.adm) })
	return "http://" + r.adm, flagFile
}

func ctl(t *testing.T, adm string, args ...string) (int, string, string) {
	t.Helper()
	return runCmd(t, append([]string{"ctl", "--admin", adm, "--token", fleetToken}, args...)...)
}

// TestCtlReadCommandsPrintJSONAndYAML parses -o json and -o yaml of every
// read command, and checks ctl status's exit codes.
func TestCtlReadCommandsPrintJSONAndYAML(t *testing.T) {
	adm, flagFile := startCtlGateway(t)
	if code, out, errOut := ctl(t, adm, "canary", "products", "25", "--reason", "ctl output test"); code != 0 {
		t.Fatalf("canary: %d %s %s", code, out, errOut)
	}

	var routes routesOutput
	decodeJSON(t, adm, &routes, "routes", "-o", "json")
	if len(routes.Routes) != 3 || routes.Routes[0].Name != "products" || routes.Routes[0].CanaryPercent != 25 || !routes.Status.Connected {
		t.Fatalf("routes -o json: %+v", routes)
	}
	var audit []admin.AuditEntry
	decodeJSON(t, adm, &audit, "audit", "-o", "json")
	if len(audit) != 1 || audit[0].Reason != "ctl output test" || audit[0].Route != "products" {
		t.Fatalf("audit -o json: %+v", audit)
	}
	var rep retire.Report
	decodeJSON(t, adm, &rep, "retire", "report", "-o", "json")
	var shadows []shadow.Report
	decodeJSON(t, adm, &shadows, "shadow", "report", "-o", "json")
	if shadows == nil || len(shadows) != 0 {
		t.Fatalf("shadow report -o json without shadow routes: %+v, want []", shadows)
	}
	var st fleetStatus
	code := decodeJSON(t, adm, &st, "status", "-o", "json")
	if code != statusOK || !st.Healthy || len(st.Replicas) != 1 || !st.Replicas[0].Ready || len(st.Routes) != 3 || st.Routes[0].Phase != "canary" || st.Routes[2].Phase != "facade" {
		t.Fatalf("status -o json: exit %d %+v", code, st)
	}

	code, out, _ := ctl(t, adm, "routes", "-o", "yaml")
	var y struct {
		Routes []struct {
			Name          string  `yaml:"name"`
			CanaryPercent float64 `yaml:"canaryPercent"`
		} `yaml:"routes"`
	}
	if err := yaml.Unmarshal([]byte(out), &y); code != 0 || err != nil || len(y.Routes) != 3 || y.Routes[0].CanaryPercent != 25 {
		t.Fatalf("routes -o yaml: exit %d, %v, %+v:\n%s", code, err, y, out)
	}
	if code, _, errOut := ctl(t, adm, "routes", "-o", "xml"); code != 2 || !strings.Contains(errOut, "want table, json or yaml") {
		t.Fatalf("-o xml: exit %d %s", code, errOut)
	}

	// Degraded: the flag file is rejected; status says so and exits 3.
	if err := os.WriteFile(flagFile, []byte(`{"flags":`), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "status degraded", func() bool {
		code, out, _ = ctl(t, adm, "status")
		return code == statusDegraded
	})
	if !strings.Contains(out, "DEGRADED") || !strings.Contains(out, "flag file rejected") {
		t.Fatalf("status table when degraded:\n%s", out)
	}
	// A replica that does not answer is a problem; the first one not
	// answering is a failure of the command.
	if code, out, _ := ctl(t, adm, "status", adm, "http://127.0.0.1:1", "-o", "json"); code != statusDegraded || !strings.Contains(out, `"http://127.0.0.1:1"`) {
		t.Fatalf("status with an unreachable replica: exit %d\n%s", code, out)
	}
	if code, _, _ := ctl(t, "http://127.0.0.1:1", "status"); code != statusFailed {
		t.Fatalf("status against nothing: exit %d, want 1", code)
	}
}

func decodeJSON(t *testing.T, adm string, v any, args ...string) int {
	t.Helper()
	code, out, errOut := ctl(t, adm, args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("ficus ctl %v: exit %d, not JSON (%v):\n%s%s", args, code, err, out, errOut)
	}
	return code
}

// syncBuffer is written by the watching command and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCtlRoutesWatchPrintsEachChange: --watch -o json prints one document
// at start and one per change, and ends cleanly with its context.
func TestCtlRoutesWatchPrintsEachChange(t *testing.T) {
	adm, _ := startCtlGateway(t)
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"ctl", "--admin", adm, "--token", fleetToken, "routes", "--watch", "--interval", "100ms", "-o", "json"}, &out, io.Discard)
	}()
	docs := func() []routesOutput {
		var ds []routesOutput
		dec := json.NewDecoder(strings.NewReader(out.String()))
		for {
			var d routesOutput
			if err := dec.Decode(&d); err != nil {
				if !errors.Is(err, io.EOF) {
					return nil // a document half-written: read again
				}
				return ds
			}
			ds = append(ds, d)
		}
	}
	waitUntil(t, 10*time.Second, "the first document", func() bool { return len(docs()) == 1 })
	if code, o, e := ctl(t, adm, "pin", "products", "new", "--reason", "watch test"); code != 0 {
		t.Fatalf("pin: %s %s", o, e)
	}
	waitUntil(t, 10*time.Second, "a document for the change", func() bool { return len(docs()) == 2 })
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("watch ended with %d", code)
	}
	if ds := docs(); ds[0].Routes[0].Pinned != "" || ds[1].Routes[0].Pinned != "new" {
		t.Fatalf("watch documents: %+v", ds)
	}
}

func TestCompletionScriptsAndVersion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, _ := runCmd(t, "completion", sh)
		if code != 0 || !strings.Contains(out, "reconcile") || !strings.Contains(out, "status") || !strings.Contains(out, "json yaml") && sh != "fish" {
			t.Errorf("completion %s: exit %d\n%s", sh, code, out)
		}
	}
	if code, _, _ := runCmd(t, "completion", "tcsh"); code != 2 {
		t.Errorf("completion tcsh: exit %d, want 2", code)
	}
	if code, out, _ := runCmd(t, "--version"); code != 0 || out != "ficus "+version+"\n" {
		t.Errorf("--version: %d %q", code, out)
	}
}

// TestSubcommandHelpPrintsFlagsOnce: the flag list appears once, on stdout.
func TestSubcommandHelpPrintsFlagsOnce(t *testing.T) {
	for _, args := range [][]string{{"ctl", "routes", "--help"}, {"ctl", "pin", "--help"}, {"demo", "--help"}, {"ctl", "--help"}} {
		code, out, errOut := runCmd(t, args...)
		if code != 0 || errOut != "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
		flagLine := "  -log-level"
		if args[0] == "ctl" && len(args) > 2 {
			flagLine = "  -o string"
			if args[1] == "pin" {
				flagLine = "  -reason string"
			}
		}
		if n := strings.Count(out, flagLine); n != 1 {
			t.Errorf("%v: %q appears %d times:\n%s", args, flagLine, n, out)
		}
	}
}
