package bench

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/config"
)

// shadowSh is sh for shadow.sh.
func shadowSh(t *testing.T, dir, script string, args ...string) string {
	t.Helper()
	return sourced(t, "shadow.sh", dir, script, args...)
}

func TestShadowLegConfigMirrorsEveryReadToTheTarget(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	shadowSh(t, dir, `UP_ADDR=127.0.0.1:9999 && ficus_conf "$1/f.yaml" 18080 18090 100 127.0.0.1:9997`)
	cfg, err := config.Load(filepath.Join(dir, "f.yaml"))
	if err != nil {
		t.Fatalf("the gateway rejects the shadow leg's config: %v", err)
	}
	r := cfg.Routes[0]
	if r.Shadow == nil || r.Shadow.Percent != 100 || r.Shadow.Target != "shadowtarget" || r.Shadow.Concurrency != 16 {
		t.Fatalf("route shadow %+v: want 100%% to shadowtarget at the default concurrency 16", r.Shadow)
	}
	if u := cfg.Upstreams[r.Shadow.Target]; u.URL != "http://127.0.0.1:9997" {
		t.Fatalf("shadow target URL %q, want the target given", u.URL)
	}
	if u := cfg.Upstreams[r.Legacy]; u.URL != "http://127.0.0.1:9999" {
		t.Fatalf("primary URL %q, want the benchmark upstream", u.URL)
	}
	if !r.BufferResponses || r.Canary != 0 {
		t.Fatalf("route %+v: want answers read whole and every request served by the primary", r)
	}
}

func TestShadowCountsAreParsedFromTheGatewayMetrics(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	metrics := `# HELP ficus_shadow_requests_total x
ficus_shadow_requests_total{result="diff",route="bench"} 5
ficus_shadow_requests_total{result="dropped",route="bench"} 12
ficus_shadow_requests_total{result="error",route="bench"} 1
ficus_shadow_requests_total{result="match",route="bench"} 1000
ficus_shadow_requests_total{result="skipped",route="bench"} 2
ficus_shadow_requests_total{result="match",route="other"} 77
`
	fixture(t, dir, "m.txt", metrics)
	got := strings.TrimSpace(shadowSh(t, dir, `parse_shadow_counts <"$1/m.txt"`))
	if got != "1005 12 1 2" {
		t.Fatalf("counts %q, want compared (match+diff) 1005, dropped 12, error 1, skipped 2", got)
	}
}

// rounds.tsv of shadow.sh: leg round rps p50us p99us errors other%
// proxycpu100k compared dropped shadowerrors skipped wall_s
const shadowRounds = "" +
	"ficus-0\t1\t1000\t1000\t4000\t0\t0\t2.00\t0\t0\t0\t0\t10\n" +
	"ficus-100\t1\t800\t1200\t4400\t0\t0\t2.60\t7900\t50\t0\t50\t10\n" +
	"nginx\t1\t1500\t800\t3000\t0\t0\t1.50\t0\t0\t0\t0\t10\n" +
	"nginx-mirror\t1\t1200\t900\t3300\t0\t0\t1.90\t0\t0\t0\t0\t10\n" +
	// round 2: ficus-100 noisy (other load 40%), left out of its figures
	"ficus-100\t2\t100\t1200\t40000\t0\t40\t5.00\t500\t500\t0\t0\t10\n" +
	"ficus-0\t2\t1100\t1000\t4000\t0\t0\t2.00\t0\t0\t0\t0\t10\n" +
	"nginx\t2\t1500\t800\t3000\t0\t0\t1.50\t0\t0\t0\t0\t10\n" +
	"nginx-mirror\t2\t1200\t900\t3300\t0\t0\t1.90\t0\t0\t0\t0\t10\n" +
	// round 3
	"ficus-0\t3\t1000\t1000\t4000\t0\t0\t2.00\t0\t0\t0\t0\t10\n" +
	"ficus-100\t3\t700\t1200\t4400\t0\t0\t2.80\t6600\t300\t0\t100\t10\n" +
	"nginx\t3\t1500\t800\t3000\t0\t0\t1.50\t0\t0\t0\t0\t10\n" +
	"nginx-mirror\t3\t1350\t900\t3300\t0\t0\t1.90\t0\t0\t0\t0\t10\n"

func TestShadowVerdictsUseCleanRoundsAndCountDrops(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fixture(t, dir, "rounds.tsv", shadowRounds)
	out := shadowSh(t, dir, `leg_table "$1/rounds.tsv" && verdicts "$1/rounds.tsv"`)
	for _, want := range []string{
		// drop % per clean round: 50/8000 = 0.625, 300/7000 = 4.29; median 2.46
		"- Fast target, copies dropped: 2.46% (target < 1%: not met)",
		// compared/s / rps: 790/800 = 0.9875, 660/700 = 0.943; median 0.965
		"- Fast target, compared pairs/s / primary requests/s: 0.97, 725 compared pairs/s (target ≥ 0.5: met)",
		// rps ratios: 0.8, 0.7 (round 2 noisy); cpu 1.3, 1.4
		"- Fast target, Ficus requests/s with 100% shadowing / without: 0.750 (per round 0.700–0.800; target ≥ 0.75: met, with rounds on both sides of it); proxy CPU per request 1.35×",
		"- Fast target, nginx requests/s mirroring 100% / not mirroring: 0.80 ",
		// the per-leg table sums drops over every round, noisy ones too
		"| ficus-100 | 750 | 1.20 | 4.40 | 0 | 2.70 | 725 | 0.97 | 850 of 16000 | 5.31 | 2 of 3 |",
		"| nginx-mirror | 1200 | 0.90 | 3.30 | 0 | 1.90 | none (copies only) | - | - | - | 3 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "Slow target") {
		t.Errorf("slow-target verdicts without slow legs:\n%s", out)
	}
}

// TestShadowThresholdVerdictsGiveTheRangeAndJudgeThePrintedValue: each
// thresholded verdict gives the per-round range, and its verdict agrees
// with the value the line shows.
func TestShadowThresholdVerdictsGiveTheRangeAndJudgeThePrintedValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, rounds, want string }{
		{
			// p99 ratios per round 4080/4000 = 1.02 and 4160/4000 = 1.04:
			// every round under the bound, so no note that they straddle it.
			name: "slow target, rounds under the bound",
			rounds: "ficus-0\t1\t1000\t1000\t4000\t0\t0\t2.00\t0\t0\t0\t0\t10\n" +
				"ficus-100-slow\t1\t990\t1000\t4080\t0\t0\t2.00\t3\t9000\t0\t0\t10\n" +
				"ficus-0\t2\t1000\t1000\t4000\t0\t0\t2.00\t0\t0\t0\t0\t10\n" +
				"ficus-100-slow\t2\t990\t1000\t4160\t0\t0\t2.00\t3\t9000\t0\t0\t10\n",
			want: "- Slow target, Ficus p99 with 100% shadowing / without: 1.030 (per round 1.020–1.040; target ≤ 1.05: met)\n",
		},
		{
			// 7496 / 10000 = 0.7496, printed 0.750: judged as printed.
			name: "fast target, a median just under the line",
			rounds: "ficus-0\t1\t10000\t1000\t4000\t0\t0\t2.00\t0\t0\t0\t0\t10\n" +
				"ficus-100\t1\t7496\t1000\t4000\t0\t0\t2.60\t74960\t0\t0\t0\t10\n",
			want: "without: 0.750 (per round 0.750–0.750; target ≥ 0.75: met)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			fixture(t, dir, "rounds.tsv", tc.rounds)
			if out := shadowSh(t, dir, `verdicts "$1/rounds.tsv"`); !strings.Contains(out, tc.want) {
				t.Fatalf("missing %q in\n%s", tc.want, out)
			}
		})
	}
}

// TestShadowRoundsRotateTheFicusLegs: the slow-target verdict compares
// ficus-100-slow with ficus-0 of the same round; when the slow leg always
// ran third, its position alone could move the ratio. Over three rounds
// each Ficus leg runs in each position once, and the nginx legs keep
// theirs.
func TestShadowRoundsRotateTheFicusLegs(t *testing.T) {
	t.Parallel()
	legs := []string{"ficus-0", "ficus-100", "ficus-100-slow", "nginx", "nginx-mirror"}
	positions := map[string]map[int]bool{}
	for round := 1; round <= 3; round++ {
		out := strings.Fields(shadowSh(t, t.TempDir(), `round_order "$2" "${@:3}"`, append([]string{fmt.Sprint(round)}, legs...)...))
		if len(out) != len(legs) {
			t.Fatalf("round %d: %v, want every leg once", round, out)
		}
		for i, leg := range out {
			if positions[leg] == nil {
				positions[leg] = map[int]bool{}
			}
			positions[leg][i] = true
		}
		if out[3] != "nginx" || out[4] != "nginx-mirror" {
			t.Fatalf("round %d: %v, the nginx legs must keep their places", round, out)
		}
	}
	for _, leg := range legs[:3] {
		if len(positions[leg]) != 3 {
			t.Fatalf("%s ran in positions %v over three rounds, want each of the first three once", leg, positions[leg])
		}
	}
}
