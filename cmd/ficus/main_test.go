package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestEverySubcommandHasHelpWithExample holds the operator promise: --help
// works everywhere, exits 0 and shows an example.
func TestEverySubcommandHasHelpWithExample(t *testing.T) {
	for name := range commands {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCmd(t, name, "--help")
			if code != 0 {
				t.Fatalf("ficus %s --help exited %d; stderr: %s", name, code, errOut)
			}
			if !strings.Contains(out, "Example") || !strings.Contains(out, "ficus "+name) {
				t.Fatalf("ficus %s --help lacks an example:\n%s", name, out)
			}
		})
	}
}

func TestUnknownCommandIsAUsageError(t *testing.T) {
	code, _, errOut := runCmd(t, "deploy")
	if code != 2 || !strings.Contains(errOut, `unknown command "deploy"`) || !strings.Contains(errOut, "ficus --help") {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
}

func TestGatewayCheckReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("upstreams: {legacy: {url: 'http://127.0.0.1:8081'}}\nroutes:\n  - {name: a, path: /a, canary: 150}\n  - {name: a, path: b}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "gateway", "--config", bad, "--check")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr: %s", code, errOut)
	}
	for _, w := range []string{"routes[0].canary", "routes[1].name: duplicates routes[0].name", "routes[1].path: must start with /"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}

	good := filepath.Join(dir, "good.yaml")
	// The printed configuration names a flag file, which --print-config
	// writes: the file runs unchanged.
	code, cfgText, _ := runCmd(t, "demo", "--print-config", "--data", filepath.Join(dir, "data"))
	if code != 0 {
		t.Fatalf("demo --print-config exited %d", code)
	}
	if !strings.Contains(cfgText, filepath.Join(dir, "data", "flags.json")) {
		t.Fatalf("the printed configuration does not name DIR/flags.json:\n%s", cfgText)
	}
	if err := os.WriteFile(good, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "gateway", "--config", good, "--check")
	if code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("the printed demo config does not validate: exit %d, %s %s", code, out, errOut)
	}

	// --check reads the flag file too: a missing flag, a broken file.
	if err := os.WriteFile(filepath.Join(dir, "data", "flags.json"), []byte(`{"flags":{"other":{"state":"ENABLED","variants":{"a":"a"},"defaultVariant":"a"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCmd(t, "demo", "--config", good, "--check")
	if code != 1 || !strings.Contains(errOut, `routes[7].flag: "products-backend" is not defined`) {
		t.Fatalf("a flag missing from the flag file: exit %d, stderr %s", code, errOut)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "flags.json"), []byte(`{"flags":`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCmd(t, "gateway", "--config", good, "--check")
	if code != 1 || !strings.Contains(errOut, "flags.file: flag file") {
		t.Fatalf("a broken flag file: exit %d, stderr %s", code, errOut)
	}
}

func TestGatewayNeedsConfig(t *testing.T) {
	code, _, errOut := runCmd(t, "gateway")
	if code != 2 || !strings.Contains(errOut, "--config FILE is required") {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
}

func TestCtlCanaryNeedsRouteAndPercent(t *testing.T) {
	code, _, errOut := runCmd(t, "ctl", "--token", "x", "canary", "products")
	if code != 2 || !strings.Contains(errOut, "canary needs ROUTE and PERCENT") {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
}
