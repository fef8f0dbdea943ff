package stats

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestFisherTeaTasting is Fisher's own published example: the lady named 3
// of the 4 milk-first cups correctly. P(at least 3 right by chance) = 17/70.
func TestFisherTeaTasting(t *testing.T) {
	t.Parallel()
	got := FisherGreater(3, 4, 1, 4)
	if want := 17.0 / 70; math.Abs(got-want) > 1e-12 {
		t.Fatalf("FisherGreater(3,4,1,4) = %v, want 17/70 = %v", got, want)
	}
}

// exactFisher sums the hypergeometric tail with exact rationals.
func exactFisher(failA, totalA, failB, totalB int64) float64 {
	c1 := failA + failB
	n := totalA + totalB
	den := new(big.Int).Binomial(n, totalA)
	num := new(big.Int)
	for x := failA; x <= min(totalA, c1); x++ {
		a := new(big.Int).Binomial(c1, x)
		b := new(big.Int).Binomial(n-c1, totalA-x)
		num.Add(num, a.Mul(a, b))
	}
	f, _ := new(big.Rat).SetFrac(num, den).Float64()
	return f
}

// TestFisherMatchesExactRationals checks the log-gamma path against the
// exact tail on many small and medium tables, including deep tails.
func TestFisherMatchesExactRationals(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		ta := 1 + r.Int64N(400)
		tb := 1 + r.Int64N(400)
		fa := r.Int64N(ta/4 + 1)
		fb := r.Int64N(tb/4 + 1)
		got := FisherGreater(uint64(fa), uint64(ta), uint64(fb), uint64(tb))
		want := exactFisher(fa, ta, fb, tb)
		if fa+fb == 0 {
			want = 1
		}
		if math.Abs(got-want) > 1e-9*math.Max(want, 1e-300) && math.Abs(got-want) > 1e-12 {
			t.Fatalf("FisherGreater(%d,%d,%d,%d) = %g, exact %g", fa, ta, fb, tb, got, want)
		}
	}
}

func TestFisherEdges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name             string
		fa, ta, fb, tb   uint64
		wantMin, wantMax float64
	}{
		{"no traffic on new", 0, 0, 5, 100, 1, 1},
		{"no failures anywhere", 0, 100, 0, 100, 1, 1},
		{"new better than legacy", 0, 1000, 50, 1000, 0.999, 1},
		{"millions of requests, huge regression", 20_000, 1_000_000, 1_000, 3_000_000, 0, 1e-300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := FisherGreater(tc.fa, tc.ta, tc.fb, tc.tb)
			if math.IsNaN(p) || p < tc.wantMin || p > tc.wantMax {
				t.Fatalf("p = %g, want in [%g, %g]", p, tc.wantMin, tc.wantMax)
			}
		})
	}
}

func binomial(r *rand.Rand, n int, p float64) uint64 {
	var k uint64
	for range n {
		if r.Float64() < p {
			k++
		}
	}
	return k
}

// Trials and the stated bound of the false-alarm checks: with 2,000 trials
// the observed rate of a test of size alpha has a standard deviation of
// sqrt(alpha(1-alpha)/2000) (0.0049 at alpha 0.05); 3 of them is the bound.
const (
	trials = 2000
	alpha  = 0.05
)

var alarmBound = alpha + 3*math.Sqrt(alpha*(1-alpha)/trials)

// TestFisherFalseAlarmRateOnIdenticalSides: both sides fail 1% of 3,000
// requests. The error gate may alarm in at most alpha of such checks (plus
// the sampling bound). Fisher's test is conservative on discrete data, so
// the rate is below alpha, but not absurdly (a test that never alarms
// would also pass the upper bound, hence the lower one).
func TestFisherFalseAlarmRateOnIdenticalSides(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(13, 13))
	alarms := 0
	for range trials {
		a := binomial(r, 3000, 0.01)
		b := binomial(r, 3000, 0.01)
		if FisherGreater(a, 3000, b, 3000) < alpha {
			alarms++
		}
	}
	rate := float64(alarms) / trials
	t.Logf("Fisher false-alarm rate on identical sides: %.4f (alpha %.2f, bound %.4f)", rate, alpha, alarmBound)
	if rate > alarmBound || rate < alpha/5 {
		t.Fatalf("false-alarm rate %.4f, want in [%.4f, %.4f]", rate, alpha/5, alarmBound)
	}
}

// TestFisherDetects2PercentAgainst0Point1 is the regression the gate exists
// for: at the 25% step of a route doing 4,000 requests per interval window
// (1,000 new, 3,000 legacy), new fails 2% and legacy 0.1%. At alpha 0.01
// the gate must see it in at least 99% of windows.
func TestFisherDetects2PercentAgainst0Point1(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 7))
	const n = 500
	hits := 0
	for range n {
		a := binomial(r, 1000, 0.02)
		b := binomial(r, 3000, 0.001)
		if FisherGreater(a, 1000, b, 3000) < 0.01 {
			hits++
		}
	}
	power := float64(hits) / n
	t.Logf("power at 1,000 new / 3,000 legacy, 2%% vs 0.1%%: %.3f", power)
	if power < 0.99 {
		t.Fatalf("detected in %.3f of windows, want >= 0.99", power)
	}
}

func TestTwoProportionZ(t *testing.T) {
	t.Parallel()
	// 20/1000 vs 3/3000: pooled 23/4000.
	z, p := TwoProportionZ(20, 1000, 3, 3000)
	pool := 23.0 / 4000
	wantZ := (0.02 - 0.001) / math.Sqrt(pool*(1-pool)*(1.0/1000+1.0/3000))
	if math.Abs(z-wantZ) > 1e-12 || p > 1e-9 {
		t.Fatalf("z = %v p = %v, want z = %v and p tiny", z, p, wantZ)
	}
	if _, p := TwoProportionZ(0, 0, 1, 10); p != 1 {
		t.Fatalf("empty side: p = %v, want 1", p)
	}
}

// TestMannWhitneyRExample: R's ?wilcox.test example (depression scores).
// R reports W = 35; wilcox.test(x, y, alternative = "greater", exact = FALSE)
// gives p = 0.1223 (z = 9.5 / sqrt(66.67) with the continuity correction).
func TestMannWhitneyRExample(t *testing.T) {
	t.Parallel()
	x := []float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46}
	y := []float64{1.15, 0.88, 0.90, 0.74, 1.21}
	got := MannWhitneyGreater(x, y)
	if got.U != 35 {
		t.Errorf("U = %v, want 35", got.U)
	}
	if math.Abs(got.P-0.12231) > 5e-5 {
		t.Errorf("p = %.5f, want 0.12231", got.P)
	}
	// Swapped, the statistic is n1 n2 - U and the p-value the other tail.
	rev := MannWhitneyGreater(y, x)
	if rev.U != 15 || rev.P < 0.85 {
		t.Errorf("swapped: U = %v p = %v, want 15 and a large p", rev.U, rev.P)
	}
}

// TestMannWhitneyTies: a sample with ties. x = 1 2 2 3, y = 2 3 3 4 5.
// Hand count of U_x: 1 beats nothing (0); each 2 ties with y's 2 (0.5 + 0.5);
// 3 beats y's 2 and ties with both 3s (1 + 0.5 + 0.5): U = 3. Tie groups:
// three 2s and three 3s, so variance = 4*5/12 * (10 - (24+24)/(9*8)).
func TestMannWhitneyTies(t *testing.T) {
	t.Parallel()
	got := MannWhitneyGreater([]float64{1, 2, 2, 3}, []float64{2, 3, 3, 4, 5})
	if got.U != 3 {
		t.Fatalf("U = %v, want 3", got.U)
	}
	wantZ := (3 - 10 + 0.5) / math.Sqrt(4.0*5/12*(10-48.0/72))
	if math.Abs(got.Z-wantZ) > 1e-12 {
		t.Fatalf("Z = %v, want %v", got.Z, wantZ)
	}
}

// gatewayBuckets are the gateway's duration histogram bounds (seconds).
var gatewayBuckets = []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, math.Inf(1)}

func bin(r *rand.Rand, n int, median float64) []uint64 {
	c := make([]uint64, len(gatewayBuckets))
	for range n {
		v := median * math.Exp(0.6*r.NormFloat64())
		for i, b := range gatewayBuckets {
			if v <= b {
				c[i]++
				break
			}
		}
	}
	return c
}

// TestMannWhitneyBinnedFalseAlarmRate: identical log-normal latencies,
// binned into the gateway's coarse buckets (so nearly every observation
// ties), 400 per side. The tie-corrected test alarms in about alpha of the
// trials; without the tie correction it would alarm far less, and with a
// wrong variance far more.
func TestMannWhitneyBinnedFalseAlarmRate(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 5))
	alarms := 0
	for range trials {
		if MannWhitneyBinned(bin(r, 400, 0.03), bin(r, 400, 0.03)).P < alpha {
			alarms++
		}
	}
	rate := float64(alarms) / trials
	t.Logf("Mann-Whitney false-alarm rate (binned, identical): %.4f (alpha %.2f, bound %.4f)", rate, alpha, alarmBound)
	if rate > alarmBound || rate < alpha/3 {
		t.Fatalf("false-alarm rate %.4f, want in [%.4f, %.4f]", rate, alpha/3, alarmBound)
	}
}

// TestMannWhitneyBinnedDetectsSlowdown: the new side's median is 1.5x the
// legacy's; with 400 requests each, the binned test sees it almost always.
func TestMannWhitneyBinnedDetectsSlowdown(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(9, 9))
	hits := 0
	const n = 300
	for range n {
		if MannWhitneyBinned(bin(r, 400, 0.045), bin(r, 400, 0.03)).P < 0.01 {
			hits++
		}
	}
	if power := float64(hits) / n; power < 0.95 {
		t.Fatalf("slowdown detected in %.3f of trials, want >= 0.95", power)
	}
}

// TestMannWhitneyBinnedEqualsRawOnExactBins: a histogram whose bins are the
// distinct values is the raw sample.
func TestMannWhitneyBinnedEqualsRawOnExactBins(t *testing.T) {
	t.Parallel()
	raw := MannWhitneyGreater([]float64{1, 1, 2, 3, 3, 3}, []float64{1, 2, 2, 2})
	binned := MannWhitneyBinned([]uint64{2, 1, 3}, []uint64{1, 3, 0})
	if raw != binned {
		t.Fatalf("raw %+v != binned %+v", raw, binned)
	}
	if r := MannWhitneyBinned([]uint64{5}, []uint64{7}); r.P != 1 {
		t.Fatalf("all in one bin: %+v, want P = 1", r)
	}
}

func TestQuantile(t *testing.T) {
	t.Parallel()
	bounds := []float64{0.1, 0.2, 0.4, math.Inf(1)}
	// 100 observations: 50 in (0,0.1], 40 in (0.1,0.2], 10 in (0.2,0.4].
	v, ok := Quantile(0.99, bounds, []uint64{50, 40, 10, 0})
	if !ok || math.Abs(v-0.38) > 1e-9 {
		t.Fatalf("p99 = %v %v, want 0.38", v, ok)
	}
	v, _ = Quantile(0.5, bounds, []uint64{50, 40, 10, 0})
	if math.Abs(v-0.1) > 1e-9 {
		t.Fatalf("p50 = %v, want 0.1", v)
	}
	if v, _ := Quantile(0.99, bounds, []uint64{0, 0, 0, 3}); v != 0.4 {
		t.Fatalf("p99 in +Inf = %v, want the last finite bound 0.4", v)
	}
	if _, ok := Quantile(0.99, bounds, []uint64{0, 0, 0, 0}); ok {
		t.Fatal("empty histogram must not be ok")
	}
}
