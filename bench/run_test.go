package bench

import (
	"context"
	"encoding/json"
	"fmt"
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
	return sourced(t, "run.sh", dir, script, args...)
}

// sourced sources file (a bench script, which then only defines its
// functions and settings) and runs script as sh does.
func sourced(t *testing.T, file, dir, script string, args ...string) string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, append([]string{"-c", `source ./` + file + ` && WORK="$1" && ` + script, "bash", dir}, args...)...)
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
	if !route.BufferResponses {
		t.Fatal("the ficus leg's route streams answers; it should read them whole (bufferResponses: true)")
	}
	// The ficus-stream leg's config differs in that one setting.
	sh(t, dir, `UP_ADDR=127.0.0.1:9999 && ficus_conf 18080 18090 false`)
	streamCfg, err := config.Load(filepath.Join(dir, "ficus.yaml"))
	if err != nil {
		t.Fatalf("the gateway rejects the streaming leg's config: %v", err)
	}
	if r := streamCfg.Routes[0]; r.Name != "bench" || r.BufferResponses || r.Canary != route.Canary || r.Flag != route.Flag {
		t.Fatalf("streaming leg route %+v: want the bench route with bufferResponses false", r)
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
			fixture(t, dir, "report.md", "new table\n")
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

func TestCPUSplitPutsArithmeticInUserTime(t *testing.T) {
	t.Parallel()
	// The shell reads its own ticks around a loop of pure arithmetic: no
	// system calls, so the ticks it gains are user ticks (fields 14 and 15
	// of /proc/PID/stat, which are easy to swap).
	out := sh(t, t.TempDir(), `
read -r u0 s0 <<<"$(cpu_split $$)"
for ((i = 0; i < 400000; i++)); do x=$((i * 7 % 13)); done
read -r u1 s1 <<<"$(cpu_split $$)"
total=$(cpu_ticks $$)
echo "user $((u1 - u0)) system $((s1 - s0)) behind $((total - u1 - s1))"
`)
	var du, ds, behind int
	if _, err := fmt.Sscanf(strings.TrimSpace(out), "user %d system %d behind %d", &du, &ds, &behind); err != nil {
		t.Fatalf("cpu_split output %q: %v", out, err)
	}
	if du < 5 || du <= ds {
		t.Fatalf("an arithmetic loop gained %d user and %d system ticks: user must dominate", du, ds)
	}
	// cpu_ticks, read just after, is their sum plus what the moment between
	// the two reads added: never less, and not a loop's worth more.
	if behind < 0 || behind > du {
		t.Fatalf("cpu_ticks read %d ticks beyond user+system just before: want 0 to a few", behind)
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
			fixture(t, dir, "results.tsv", tc.results)
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

// labels are the targets' names in the report, as the start_<leg> functions
// set them.
var labels = map[string]string{
	"direct": "direct (upstream)",
	"bare":   "bare Fiber v2 proxy",
	"nginx":  "nginx 1.22.1",
	"ficus":  "Ficus",
}

// roundLine is one rounds.tsv line as measure writes it: leg label rps p50us
// p99us errors cpu100k upcpu100k rsskib other% allcpu100k idle% round. The
// columns the ratios do not read get plausible fixed values.
func roundLine(leg string, round, rps, p99us, errs, other int, cpu, all string) string {
	rss := "15000"
	if cpu == "-" {
		rss = "-"
	}
	return fmt.Sprintf("%s\t%s\t%d\t%d\t%d\t%d\t%s\t1.00\t%s\t%d\t%s\t5\t%d\n",
		leg, labels[leg], rps, p99us/4, p99us, errs, cpu, rss, other, all, round)
}

// checkOutput fails the test for every want missing from out and every
// absent present in it.
// fixture writes content to dir/name, as the script under test would have.
func fixture(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func checkOutput(t *testing.T, out string, want, absent []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in\n%s", w, out)
		}
	}
	for _, a := range absent {
		if strings.Contains(out, a) {
			t.Errorf("unexpected %q in\n%s", a, out)
		}
	}
}

func TestRatiosAreMediansOfPairedRounds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		rounds       []string
		want, absent []string
	}{
		{
			// The machine ran 20 % faster in round 2 and 20 % slower in
			// round 3. The ratio of the targets' medians (960 / 1000) would
			// say 0.96; the median of the per-round ratios says 0.90.
			name: "ratio within each round, median over rounds",
			rounds: []string{
				roundLine("bare", 1, 1000, 4000, 0, 1, "2.00", "4.00"),
				roundLine("ficus", 1, 800, 6000, 0, 1, "2.20", "5.00"),
				roundLine("bare", 2, 1200, 4000, 0, 1, "2.00", "4.00"),
				roundLine("ficus", 2, 1080, 6000, 0, 1, "2.20", "4.65"),
				roundLine("bare", 3, 800, 4000, 0, 1, "2.00", "4.00"),
				roundLine("ficus", 3, 960, 6000, 0, 1, "2.20", "4.20"),
			},
			want: []string{"| Ficus / bare Fiber | 0.90 (median of 3 rounds, range 0.80–1.20) | 1.50 | 1.10 | 0.86 | ≥ 0.85: met by requests/s, met per CPU-second |"},
		},
		{
			name: "a noisy round of one leg leaves only that leg's pairs",
			rounds: []string{
				roundLine("direct", 1, 1000, 3000, 0, 1, "-", "2.00"),
				roundLine("bare", 1, 1000, 4000, 0, 1, "2.00", "4.00"),
				roundLine("ficus", 1, 800, 6000, 0, 1, "2.20", "5.00"),
				roundLine("direct", 2, 1000, 3000, 0, 1, "-", "2.00"),
				roundLine("bare", 2, 1000, 4000, 0, 40, "2.00", "4.00"),
				roundLine("ficus", 2, 500, 6000, 0, 1, "2.20", "5.00"),
				roundLine("direct", 3, 1000, 3000, 0, 1, "-", "2.00"),
				roundLine("bare", 3, 1000, 4000, 0, 1, "2.00", "4.00"),
				roundLine("ficus", 3, 1200, 6000, 0, 1, "2.20", "5.00"),
				roundLine("direct", 4, 1000, 3000, 0, 1, "-", "2.00"),
				roundLine("bare", 4, 1000, 4000, 0, 1, "2.00", "4.00"),
				roundLine("ficus", 4, 900, 6000, 0, 1, "2.20", "5.00"),
			},
			want: []string{
				"| Ficus / bare Fiber | 0.90 (median of 3 of 4 rounds, range 0.80–1.20) | 1.50 | 1.10 | 0.80 | ≥ 0.85: met by requests/s, not met per CPU-second |",
				"| bare Fiber / direct | 1.00 (median of 3 of 4 rounds, range 1.00–1.00) |",
				"| Ficus / direct | 0.85 (median of 4 rounds, range 0.50–1.20) |",
			},
			absent: []string{"none clean"},
		},
		{
			name: "a round with errors is left out",
			rounds: []string{
				roundLine("bare", 1, 1000, 4000, 0, 1, "2.00", "4.00"),
				roundLine("ficus", 1, 800, 6000, 0, 1, "2.20", "5.00"),
				roundLine("bare", 2, 1000, 4000, 0, 1, "2.00", "4.00"),
				roundLine("ficus", 2, 1200, 6000, 7, 1, "2.20", "5.00"),
				roundLine("bare", 3, 1000, 4000, 0, 1, "2.00", "4.00"),
				roundLine("ficus", 3, 900, 6000, 0, 1, "2.20", "5.00"),
				roundLine("bare", 4, 1000, 4000, 0, 1, "2.00", "4.00"),
				roundLine("ficus", 4, 1000, 6000, 0, 1, "2.20", "5.00"),
			},
			want: []string{"| Ficus / bare Fiber | 0.90 (median of 3 of 4 rounds, range 0.80–1.00) |"},
		},
		{
			name: "no clean round: all of them, and the row says so",
			rounds: []string{
				roundLine("bare", 1, 1000, 4000, 0, 30, "2.00", "4.00"),
				roundLine("ficus", 1, 700, 6000, 0, 1, "2.20", "5.00"),
				roundLine("bare", 2, 1000, 4000, 0, 25, "2.00", "4.00"),
				roundLine("ficus", 2, 900, 6000, 0, 1, "2.20", "5.00"),
				roundLine("bare", 3, 1000, 4000, 0, 50, "2.00", "4.00"),
				roundLine("ficus", 3, 800, 6000, 0, 1, "2.20", "5.00"),
			},
			want: []string{"| Ficus / bare Fiber | 0.80 (median of 3 rounds, range 0.70–0.90, none clean) | 1.50 | 1.10 | 0.80 | ≥ 0.85: not met by requests/s, not met per CPU-second |"},
		},
		{
			name: "a leg missing from a round",
			rounds: []string{
				roundLine("bare", 1, 1000, 4000, 0, 1, "2.00", "4.00"),
				roundLine("ficus", 1, 800, 6000, 0, 1, "2.20", "5.00"),
				roundLine("bare", 2, 1000, 4000, 0, 1, "2.00", "4.00"),
				roundLine("bare", 3, 1000, 4000, 0, 1, "2.00", "4.00"),
				roundLine("ficus", 3, 1000, 6000, 0, 1, "2.20", "5.00"),
			},
			want: []string{"| Ficus / bare Fiber | 0.90 (median of 2 rounds, range 0.80–1.00) |"},
		},
		{
			name: "one round, even a noisy one, is that round's ratio",
			rounds: []string{
				roundLine("bare", 1, 1000, 4000, 0, 40, "2.00", "4.00"),
				roundLine("ficus", 1, 900, 6000, 0, 1, "2.20", "5.00"),
			},
			want:   []string{"| Ficus / bare Fiber | 0.90 | 1.50 | 1.10 | 0.80 | ≥ 0.85: met by requests/s, not met per CPU-second |"},
			absent: []string{"median of", "range"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			fixture(t, dir, "rounds.tsv", strings.Join(tc.rounds, ""))
			checkOutput(t, sh(t, dir, `ratio_rows "$1/rounds.tsv"`), tc.want, tc.absent)
		})
	}
}

func TestTargetMediansUseCleanRounds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// direct: round 1 noisy, left out. bare: three clean rounds. ficus:
	// no clean round (two noisy, one with errors), so all three count.
	rounds := "" +
		"direct\tdirect (upstream)\t900\t500\t3000\t0\t-\t1.00\t-\t40\t2.00\t4\t1\n" +
		"bare\tbare Fiber v2 proxy\t800\t1000\t4000\t0\t2.00\t1.00\t15000\t1\t4.00\t5\t1\n" +
		"ficus\tFicus\t600\t1500\t6000\t0\t3.00\t1.20\t30000\t30\t5.00\t3\t1\n" +
		"direct\tdirect (upstream)\t1000\t460\t2800\t0\t-\t0.90\t-\t2\t1.90\t6\t2\n" +
		"bare\tbare Fiber v2 proxy\t700\t1200\t5000\t0\t2.20\t1.00\t16000\t0\t4.40\t9\t2\n" +
		"ficus\tFicus\t700\t1400\t5500\t0\t2.80\t1.10\t32000\t20\t4.80\t4\t2\n" +
		"direct\tdirect (upstream)\t1100\t400\t2600\t0\t-\t0.70\t-\t3\t1.70\t8\t3\n" +
		"bare\tbare Fiber v2 proxy\t900\t1100\t4500\t0\t2.10\t1.00\t15500\t2\t4.20\t7\t3\n" +
		"ficus\tFicus\t650\t1450\t7000\t4\t2.90\t1.30\t31000\t5\t4.90\t5\t3\n"
	fixture(t, dir, "rounds.tsv", rounds)
	got := sh(t, dir, `target_medians "$1/rounds.tsv"`)
	// leg label rps p50 p99 errors cpu upcpu rss(max) other(max) allcpu idle,
	// then rounds used, rounds, noisy rounds, largest other load, rounds
	// with errors, errors of all rounds.
	want := "" +
		"direct\tdirect (upstream)\t1050\t430\t2700\t0\t-\t0.80\t-\t3\t1.80\t7\t2\t3\t1\t40\t0\t0\n" +
		"bare\tbare Fiber v2 proxy\t800\t1100\t4500\t0\t2.10\t1.00\t16000\t2\t4.20\t7\t3\t3\t0\t2\t0\t0\n" +
		"ficus\tFicus\t650\t1450\t6000\t4\t2.90\t1.20\t32000\t30\t4.90\t4\t3\t3\t2\t30\t1\t4\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}

	out := sh(t, dir, `target_medians "$1/rounds.tsv" >"$1/results.tsv" && results_table "$1/results.tsv"`)
	checkOutput(t, out, []string{
		"| direct (upstream) | 1050 | 0.43 | 2.70 | 0 | - | 0.80 | 1.80 | - | 3 | 7 | 2 of 3 |",
		"| bare Fiber v2 proxy | 800 | 1.10 | 4.50 | 0 | 2.10 | 1.00 | 4.20 | 15.6 | 2 | 7 | 3 |",
		// Two of three rounds noisy: even the median is disturbed.
		"**Noisy:** other processes used more than 10% of the machine while measuring Ficus (2 of 3 rounds, up to 30%);",
		"**Errors:** Ficus (4) answered errors or timed out; their requests/s are not comparable.",
	}, []string{
		// One noisy round of three is left out, not flagged.
		"measuring direct",
		"left out of the medians",
	})
}

func TestResultsTableSaysWhenErrorRoundsWereLeftOut(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rounds := roundLine("ficus", 1, 800, 6000, 0, 1, "2.20", "5.00") +
		roundLine("ficus", 2, 300, 9000, 57, 1, "2.20", "5.00") +
		roundLine("ficus", 3, 900, 6000, 0, 1, "2.20", "5.00")
	fixture(t, dir, "rounds.tsv", rounds)
	out := sh(t, dir, `target_medians "$1/rounds.tsv" >"$1/results.tsv" && results_table "$1/results.tsv"`)
	checkOutput(t, out, []string{
		"| Ficus | 850 | 1.50 | 6.00 | 0 | 2.20 | 1.00 | 5.00 | 14.6 | 1 | 5 | 2 of 3 |",
		"**Errors:** Ficus (57 in 1 of 3 rounds) answered errors or timed out in some rounds; those rounds are left out of the medians.",
	}, []string{"**Noisy:**", "not comparable"})
}

func TestRoundTableShowsEveryRoundAndItsFicusToBareRatio(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		rounds       string
		want, absent []string
	}{
		{
			name: "two rounds, Ficus missing from the second",
			rounds: roundLine("direct", 1, 2000, 3000, 0, 1, "-", "2.00") +
				roundLine("bare", 1, 1000, 4000, 0, 1, "2.00", "4.00") +
				roundLine("ficus", 1, 800, 6500, 0, 1, "2.20", "5.00") +
				roundLine("direct", 2, 2100, 3000, 0, 2, "-", "2.00") +
				roundLine("bare", 2, 1100, 4000, 0, 40, "2.00", "4.00"),
			want: []string{
				"| round | target | requests/s | p99 ms | proxy CPU s / 100k req | other load % | Ficus / bare requests/s in the round |\n|---:|",
				"| 1 | direct | 2000 | 3.00 | - | 1 |  |\n" +
					"| 1 | bare | 1000 | 4.00 | 2.00 | 1 |  |\n" +
					"| 1 | ficus | 800 | 6.50 | 2.20 | 1 | 0.80 |\n" +
					"| 2 | direct | 2100 | 3.00 | - | 2 |  |\n" +
					"| 2 | bare | 1100 | 4.00 | 2.00 | 40 |  |\n",
			},
		},
		{
			name: "Ficus without the bare proxy in its round",
			rounds: roundLine("nginx", 1, 2000, 3000, 0, 1, "1.50", "2.00") +
				roundLine("ficus", 1, 800, 6500, 0, 1, "2.20", "5.00"),
			want: []string{"| 1 | nginx | 2000 | 3.00 | 1.50 | 1 |  |\n" +
				"| 1 | ficus | 800 | 6.50 | 2.20 | 1 | - |\n"},
		},
		{
			name:   "nothing measured",
			absent: []string{"| round |"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			fixture(t, dir, "rounds.tsv", tc.rounds)
			checkOutput(t, sh(t, dir, `round_table "$1/rounds.tsv"`), tc.want, tc.absent)
		})
	}
}
