package bench

import (
	"strings"
	"testing"
)

// rate.tsv of run.sh: leg round rate sent errors achieved p50us p99us p999us other%
const rateRounds = "" +
	"direct\t1\t4000\t40000\t0\t3999\t200\t500\t1500\t0\n" +
	"nginx\t1\t4000\t40000\t0\t3999\t400\t1000\t2500\t0\n" +
	"ficus\t1\t4000\t40000\t0\t3999\t500\t1300\t4500\t0\n" +
	// round 2: nginx disturbed (other load 30%): left out of nginx's figures
	"direct\t2\t4000\t40000\t0\t3999\t220\t600\t1600\t0\n" +
	"nginx\t2\t4000\t40000\t0\t3999\t900\t9000\t20000\t30\n" +
	"ficus\t2\t4000\t40000\t0\t3999\t520\t1400\t4000\t0\n" +
	// round 3: ficus fell short of the rate: left out of ficus's figures
	"direct\t3\t4000\t40000\t0\t3999\t210\t550\t1550\t0\n" +
	"nginx\t3\t4000\t40000\t0\t3999\t410\t1150\t2550\t0\n" +
	"ficus\t3\t4000\t30000\t0\t3000\t5000\t50000\t90000\t0\n"

func TestRateRowsGiveWhatEachProxyAddsOverDirect(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fixture(t, dir, "rate.tsv", rateRounds)
	out := sh(t, dir, `rate_rows "$1/rate.tsv"`)
	checkOutput(t, out, []string{
		// direct: medians of its three clean rounds
		"| direct | 0.21 | 0.55 | 1.55 | - | - | - | 0 | 3 |",
		// nginx rounds 1 and 3: added p50 200, 200; p99 500, 600 -> 550; p99.9 1000, 1000
		"| nginx | 0.41 | 1.07 | 2.52 | +0.20 | +0.55 | +1.00 | 0 | 2 |",
		// ficus rounds 1 and 2: p99 added 800, 800; p99.9 added 3000, 2400 -> 2700
		"| ficus | 0.51 | 1.35 | 4.25 | +0.30 | +0.80 | +2.70 | 0 | 2 |",
		"Ficus adds +0.80 ms at p99 over direct, nginx +0.55 ms: target Ficus ≤ nginx: not met.",
	}, nil)
	if strings.Contains(out, "50.00") {
		t.Errorf("a round that fell short of the rate was used:\n%s", out)
	}
}

func TestRatioRowsJudgeFicusAgainstNginx(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rounds := roundLine("nginx", 1, 1000, 4000, 0, 1, "2.00", "4.00") +
		roundLine("ficus", 1, 920, 5800, 0, 1, "2.20", "4.40") +
		roundLine("nginx", 2, 1000, 4000, 0, 1, "2.00", "4.00") +
		roundLine("ficus", 2, 940, 6200, 0, 1, "2.40", "4.40")
	fixture(t, dir, "rounds.tsv", rounds)
	checkOutput(t, sh(t, dir, `ratio_rows "$1/rounds.tsv"`), []string{
		"| Ficus / nginx | 0.93 (median of 2 rounds, range 0.92–0.94) | 1.50 | 1.15 | 0.91 | ≥ 0.90: met by requests/s, met per CPU-second |",
		"Ficus against nginx, medians of paired rounds: requests/s 0.93 (target ≥ 0.90: met), requests per CPU-second 0.91, proxy CPU per request 1.15 (target ≤ 1.15: met), p99 1.50 (target ≤ 1.50: met).",
	}, nil)
}

func TestRSSRowsReportBothConnectionCountsAndJudgeFicus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rss := "nginx\tnginx 1.22.1\t19456\t22528\t8192\t2048\nficus\tFicus (flag + canary + breaker + metrics)\t37683\t48128\t15360\t24064\n"
	fixture(t, dir, "rss.tsv", rss)
	checkOutput(t, sh(t, dir, `rss_rows "$1/rss.tsv" 64 256`), []string{
		"| target | peak RSS MiB, 64 connections | peak RSS MiB, 256 connections | resident after: anonymous MiB (PSS) | resident after: mapped from files MiB (PSS) |",
		"| nginx 1.22.1 | 19.0 | 22.0 | 8.0 | 2.0 |",
		"| Ficus (flag + canary + breaker + metrics) | 36.8 | 47.0 | 15.0 | 23.5 |",
		"Ficus peak RSS at 64 connections: 36.8 MiB (target ≤ 32 MiB: not met). Of what stayed resident after 256 connections, 15.0 MiB was anonymous memory and 23.5 MiB pages of the executable and libraries (clean, shared by every process of the same binary, reclaimable).",
	}, nil)
}

func TestPerfCountsReadsPerfStatCSV(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := "# started on Sun Nov 29 23:49:01 2026\n\n" +
		"1380112,,raw_syscalls:sys_enter,6121453528,100.00,225.455,K/sec\n" +
		"70351,,sched:sched_switch,6121453528,100.00,11.493,K/sec\n" +
		"6121.45,msec,task-clock,6121453528,100.00,1.020,CPUs utilized\n"
	fixture(t, dir, "good.perf", good)
	if got := strings.TrimSpace(sh(t, dir, `perf_counts "$1/good.perf"`)); got != "1380112 70351 6121.45" {
		t.Fatalf("perf_counts = %q, want the three counts", got)
	}
	// A tracepoint the kernel does not offer is "<not supported>": the
	// counted leg must be left out, not divided into garbage.
	bad := strings.Replace(good, "70351,,sched", "<not supported>,,sched", 1)
	fixture(t, dir, "bad.perf", bad)
	if got := sh(t, dir, `perf_counts "$1/bad.perf" || echo refused`); !strings.Contains(got, "refused") {
		t.Fatalf("perf_counts accepted an uncounted event: %q", got)
	}
}

func TestCountRowsArePerRequestMediansAndPairedRatios(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// leg round requests syscalls switches task_clock_ms other% kernel%
	count := "" +
		"bare\t1\t200000\t1250000\t58000\t4960\t0\t80\n" +
		"bare-prefork\t1\t200000\t1300000\t90000\t5400\t0\t-\n" +
		"nginx\t1\t250000\t1275000\t62500\t5125\t0\t60\n" +
		"ficus\t1\t180000\t1134000\t59400\t4950\t0\t76\n" +
		// round 2: the machine is slower for everyone; ratios hold
		"bare\t2\t150000\t937500\t43500\t3720\t0\t80\n" +
		"bare-prefork\t2\t150000\t975000\t67500\t4050\t0\t84\n" +
		"nginx\t2\t190000\t969000\t47500\t3895\t0\t60\n" +
		"ficus\t2\t135000\t850500\t44550\t3712.5\t0\t76\n" +
		// round 3: noisy, left out of the medians
		"bare\t3\t100000\t900000\t90000\t9000\t40\t50\n" +
		"bare-prefork\t3\t100000\t900000\t90000\t9000\t40\t50\n" +
		"nginx\t3\t100000\t900000\t90000\t9000\t40\t50\n" +
		"ficus\t3\t100000\t900000\t90000\t9000\t40\t50\n" +
		// a leg with no clean round: all its rounds count, and it says so
		"solo\t1\t100000\t600000\t30000\t2500\t40\t-\n" +
		"solo\t2\t100000\t700000\t40000\t3500\t40\t-\n"
	fixture(t, dir, "count.tsv", count)
	checkOutput(t, sh(t, dir, `count_rows "$1/count.tsv"`), []string{
		"| leg | system calls / request | context switches / request | CPU µs / request | of which in the kernel, µs | rounds |",
		"| bare | 6.25 | 0.290 | 24.8 | 19.8 | 2 |",
		// the kernel share is unknown in round 1: its median is round 2's
		"| bare-prefork | 6.50 | 0.450 | 27.0 | 22.7 | 2 |",
		"| nginx | 5.10 | 0.250 | 20.5 | 12.3 | 2 |",
		"| ficus | 6.30 | 0.330 | 27.5 | 20.9 | 2 |",
		"| solo | 6.50 | 0.350 | 30.0 | – | 2 (none clean) |",
		"CPU per request, counted (medians of per-round ratios): Ficus / nginx 1.34, bare Fiber / nginx 1.21, bare Fiber in Prefork / nginx 1.32, Ficus / bare Fiber 1.11.",
		"In the kernel alone (the proxy's share of kernel ticks in /proc, times its counted CPU): bare 19.8 µs (0.97 × nginx's whole), bare-prefork 22.7 µs (1.11 × nginx's whole), ficus 20.9 µs (1.02 × nginx's whole); nginx spends 20.5 µs in all.",
	}, []string{"| 3 |", "9.00"})
}
