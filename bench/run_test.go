package bench

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/config"
)

// sh sources run.sh (which then only defines its functions and settings) and
// runs script with WORK and $1 set to dir, and $2... to args. It returns the
// combined output.
func sh(t *testing.T, dir, script string, args ...string) string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, append([]string{"-c", `source ./run.sh && WORK="$1" && ` + script, "bash", dir}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	return string(out)
}

func TestFicusConfigOfTheRunIsValidForTheGateway(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	reqPath := strings.TrimSpace(sh(t, dir, `UP_ADDR=127.0.0.1:9999 && ficus_conf 18080 18090 && echo "$REQ_PATH"`))

	cfg, err := config.Load(filepath.Join(dir, "ficus.yaml"))
	if err != nil {
		t.Fatalf("the gateway rejects the benchmark's config: %v", err)
	}
	if cfg.Listen != "127.0.0.1:18080" || cfg.Admin.Listen != "127.0.0.1:18090" {
		t.Fatalf("listeners %q and %q, want the free ports on 127.0.0.1", cfg.Listen, cfg.Admin.Listen)
	}
	var route *config.Route
	for i := range cfg.Routes {
		if cfg.Routes[i].Name == "bench" {
			route = &cfg.Routes[i]
		}
	}
	if route == nil {
		t.Fatal("no route named bench")
	}
	if !strings.HasPrefix(reqPath, strings.TrimSuffix(route.Path, "*")) {
		t.Fatalf("the loaded path %q is outside the route %q", reqPath, route.Path)
	}
	if route.New != "up2" || route.Canary != 50 || route.Flag == "" {
		t.Fatalf("route bench: new %q canary %v flag %q; want up2, 50 and a flag", route.New, route.Canary, route.Flag)
	}
	for _, name := range []string{route.Legacy, route.New} {
		u := cfg.Upstreams[name]
		if u.URL != "http://127.0.0.1:9999" {
			t.Fatalf("upstream %s is %q, want the benchmark upstream", name, u.URL)
		}
		if u.Breaker.Disabled {
			t.Fatalf("upstream %s has its breaker off; the run measures Ficus with breakers", name)
		}
	}

	// The flag must exist and, for almost every user, answer a variant that
	// is not a backend, so that the canary also runs on the hot path.
	b, err := os.ReadFile(cfg.Flags.File)
	if err != nil {
		t.Fatalf("flags file: %v", err)
	}
	var flags struct {
		Flags map[string]struct {
			State          string            `json:"state"`
			Variants       map[string]string `json:"variants"`
			DefaultVariant string            `json:"defaultVariant"`
		} `json:"flags"`
	}
	if err := json.Unmarshal(b, &flags); err != nil {
		t.Fatalf("flags file is not JSON: %v", err)
	}
	f, ok := flags.Flags[route.Flag]
	if !ok {
		t.Fatalf("flag %q is not in the flags file", route.Flag)
	}
	if f.State != "ENABLED" || f.Variants["new"] != "new" {
		t.Fatalf("flag %q: state %q, variants %v", route.Flag, f.State, f.Variants)
	}
	if v, ok := f.Variants[f.DefaultVariant]; !ok || v == "new" || v == "legacy" {
		t.Fatalf("default variant %q = %q: it must exist and leave the decision to the canary", f.DefaultVariant, v)
	}
}

func TestNginxConfigsOfTheRunAreAccepted(t *testing.T) {
	t.Parallel()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/nginx"); statErr != nil {
			t.Skip("nginx is not installed (bench/run.sh installs it)")
		}
		nginx = "/usr/sbin/nginx"
	}
	for _, tc := range []struct {
		name, mirror string
	}{
		{"nginx", ""},
		{"nginx-mirror", "127.0.0.1:9998"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			sh(t, dir, `UP_ADDR=127.0.0.1:9999 && nginx_conf "$2" 18081 "$3"`+"\n", tc.name, tc.mirror)
			prefix := filepath.Join(dir, tc.name)
			conf := filepath.Join(prefix, "nginx.conf")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if out, err := exec.CommandContext(ctx, nginx, "-t", "-q", "-p", prefix, "-c", conf).CombinedOutput(); err != nil {
				t.Fatalf("nginx -t rejects the config: %v\n%s", err, out)
			}
			b, err := os.ReadFile(conf)
			if err != nil {
				t.Fatal(err)
			}
			text := string(b)
			for _, line := range strings.Split(text, "\n") {
				if f := strings.Fields(line); len(f) > 1 && f[0] == "listen" && !strings.HasPrefix(f[1], "127.0.0.1:") {
					t.Fatalf("nginx listens off loopback: %q", line)
				}
			}
			for _, want := range []string{"keepalive 64;", "proxy_http_version 1.1;", `proxy_set_header Connection "";`, "access_log off;"} {
				if !strings.Contains(text, want) {
					t.Fatalf("config lacks %q", want)
				}
			}
			if mirrored := strings.Contains(text, "mirror /_mirror;"); mirrored != (tc.mirror != "") {
				t.Fatalf("mirror directive present = %v, want %v", mirrored, tc.mirror != "")
			}
		})
	}
}

func TestRatiosJudgeTheTargetAgainstTheBareProxy(t *testing.T) {
	t.Parallel()
	// leg label rps p50 p99 errors proxyCPU upstreamCPU rss other% allCPU
	const bare = "bare\tbare Fiber v2 proxy\t800\t1000\t4000\t0\t2.00\t1.00\t15000\t1\t4.00\n"
	const direct = "direct\tdirect (upstream)\t1000\t800\t3000\t0\t-\t1.00\t-\t1\t2.00\n"
	const nginx = "nginx\tnginx\t1000\t900\t5000\t0\t1.00\t1.00\t20000\t1\t3.00\n"
	for _, tc := range []struct {
		name, results string
		want, absent  []string
	}{
		{
			name:    "ficus above 85% of the bare proxy",
			results: direct + bare + nginx + "ficus\tFicus\t720\t1100\t6000\t0\t2.20\t1.00\t30000\t1\t5.00\n",
			want: []string{
				"| Ficus / bare Fiber | 0.90 | 1.50 | 1.10 | 0.80 | ≥ 0.85: met by requests/s, not met per CPU-second |",
				"| Ficus / nginx | 0.72 | 1.20 | 2.20 | 0.60 |",
				"| bare Fiber / nginx | 0.80 | 0.80 | 2.00 | 0.75 |",
				"| nginx / direct | 1.00 | 1.67 | - | 0.67 |",
			},
		},
		{
			name:    "ficus below 85% of the bare proxy",
			results: bare + "ficus\tFicus\t600\t1100\t6000\t0\t2.20\t1.00\t30000\t1\t4.40\n",
			want:    []string{"| Ficus / bare Fiber | 0.75 | 1.50 | 1.10 | 0.91 | ≥ 0.85: not met by requests/s, met per CPU-second |"},
			absent:  []string{"Ficus / nginx", "nginx / direct"},
		},
		{
			name:    "one leg only",
			results: direct,
			absent:  []string{"| ratio |"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			res := filepath.Join(dir, "results.tsv")
			if err := os.WriteFile(res, []byte(tc.results), 0o644); err != nil {
				t.Fatal(err)
			}
			out := sh(t, dir, `ratio_rows "$1/results.tsv"`)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q in\n%s", w, out)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(out, a) {
					t.Errorf("unexpected %q in\n%s", a, out)
				}
			}
		})
	}
}

func TestWriteDocReplacesOnlyTheResults(t *testing.T) {
	t.Parallel()
	const prose = "# Benchmarks\n\nHow to read this.\n\n"
	const caveats = "\n## Caveats\n\nShared cores.\n"
	for _, tc := range []struct {
		name, before, want string
	}{
		{
			name:   "markers present",
			before: prose + "<!-- bench:begin -->\nold table\n<!-- bench:end -->\n" + caveats,
			want:   prose + "<!-- bench:begin -->\nnew table\n<!-- bench:end -->\n" + caveats,
		},
		{
			name:   "no markers yet",
			before: prose,
			want:   prose + "\n## Results\n\n<!-- bench:begin -->\nnew table\n<!-- bench:end -->\n",
		},
		{
			name: "no file yet",
			want: "## Results\n\n<!-- bench:begin -->\nnew table\n<!-- bench:end -->\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			doc := filepath.Join(dir, "benchmarks.md")
			if tc.before != "" {
				if err := os.WriteFile(doc, []byte(tc.before), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte("new table\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			// Twice: a second run replaces the first run's results.
			for range 2 {
				sh(t, dir, `write_doc "$1/report.md" "$1/benchmarks.md"`)
			}
			got, err := os.ReadFile(doc)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestStartedProcessesAreStoppedByPID(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := sh(t, dir, `
start child sleep 60
child=$PID
kids=$(family $$)
grep -qx "$child" <<<"$kids" && echo "child listed"
(( $(peak_rss_kib "$child") > 0 )) && echo "rss read"
alive "$child" && echo "alive"
stop_started "$child"
alive "$child" || echo "stopped"
echo "left ${#STARTED[@]}"
`)
	for _, want := range []string{"child listed", "rss read", "alive", "stopped", "left 0"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestLeastDisturbedRoundIsKeptPerTarget(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rounds := "" +
		"direct\td\t900\t1\t2\t0\t-\t1\t-\t40\n" +
		"bare\tb\t700\t1\t2\t0\t2\t1\t9\t5\n" +
		"direct\td\t1000\t1\t2\t0\t-\t1\t-\t3\n" +
		"bare\tb\t800\t1\t2\t0\t2\t1\t9\t30\n"
	if err := os.WriteFile(filepath.Join(dir, "rounds.tsv"), []byte(rounds), 0o644); err != nil {
		t.Fatal(err)
	}
	got := sh(t, dir, `least_disturbed "$1/rounds.tsv"`)
	want := "direct\td\t1000\t1\t2\t0\t-\t1\t-\t3\n" + "bare\tb\t700\t1\t2\t0\t2\t1\t9\t5\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}

func TestResultsTableFlagsNoisyAndFailingTargets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, results string
		want, absent  []string
	}{
		{
			name:    "quiet and clean",
			results: "nginx\tnginx 1.22.1\t51505\t1100\t13900\t0\t1.37\t1.05\t19763\t2\t4.10\t3\n",
			want:    []string{"| nginx 1.22.1 | 51505 | 1.10 | 13.90 | 0 | 1.37 | 1.05 | 4.10 | 19.3 | 2 | 3 |"},
			absent:  []string{"**Noisy:**", "**Errors:**"},
		},
		{
			name: "noisy direct, failing ficus",
			results: "direct\tdirect (upstream)\t92723\t460\t74430\t0\t-\t0.67\t-\t46\t1.90\n" +
				"ficus\tFicus\t120\t900\t2000000\t57\t2.90\t1.32\t32000\t4\t5.20\n",
			want: []string{
				"| direct (upstream) | 92723 | 0.46 | 74.43 | 0 | - | 0.67 | 1.90 | - | 46 | - |",
				"**Noisy:** other processes used more than 10% of the machine while measuring direct (upstream) (46%)",
				"**Errors:** Ficus (57)",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "results.tsv"), []byte(tc.results), 0o644); err != nil {
				t.Fatal(err)
			}
			out := sh(t, dir, `results_table "$1/results.tsv"`)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q in\n%s", w, out)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(out, a) {
					t.Errorf("unexpected %q in\n%s", a, out)
				}
			}
		})
	}
}
