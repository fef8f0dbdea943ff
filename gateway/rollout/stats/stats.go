// Package stats holds the two significance tests the rollout gates judge
// with: Fisher's exact test for error rates and the Mann-Whitney U test for
// latency. Both are one-sided ("is the new side worse?") because a rollout
// only ever acts on a regression; an improvement is not a reason to stop.
//
// Why tests and not ratios: at a 1% canary step the new side may have served
// 40 requests with 2 errors while legacy served 4,000 with 20. A ratio says
// "10x worse"; the data cannot tell 5% from 0.5% at that volume. A test
// returns a p-value: the probability of seeing a difference at least this
// large if both sides were in fact identical. A gate fails the step only when
// p < alpha, so alpha is the stated false-alarm rate per check (the tests in
// this package measure it on identical sides).
package stats

import (
	"math"
	"slices"
)

// logChoose returns ln(n choose k) through the log-gamma function, exact
// enough (relative error ~1e-15) for counts far beyond what a step sees,
// where the factorials themselves overflow a float64 past 170.
func logChoose(n, k uint64) float64 {
	a, _ := math.Lgamma(float64(n) + 1)
	b, _ := math.Lgamma(float64(k) + 1)
	c, _ := math.Lgamma(float64(n-k) + 1)
	return a - b - c
}

// hypergeomLogPMF is ln P(X = x) for the number X of "failures" falling in
// the first row of a 2x2 table with row total r1, column total c1 (all
// failures) and grand total n: C(c1, x) C(n-c1, r1-x) / C(n, r1).
func hypergeomLogPMF(x, r1, c1, n uint64) float64 {
	return logChoose(c1, x) + logChoose(n-c1, r1-x) - logChoose(n, r1)
}

// FisherGreater is the one-sided Fisher exact test that the first group
// (the new side: failA failures out of totalA) fails more often than the
// second (legacy: failB of totalB). It returns the p-value P(X >= failA)
// where X is hypergeometric with the table's margins fixed: the chance of
// the new side collecting at least this many of all the failures if
// failures fell on requests regardless of side.
//
// Published check: Fisher's tea-tasting table [[3,1],[1,3]] gives 17/70 =
// 0.2429 (R: fisher.test(..., alternative = "greater")).
//
// With no failures at all, or an empty side, there is no evidence: p = 1.
// Counts where fail > total are clamped to total.
func FisherGreater(failA, totalA, failB, totalB uint64) float64 {
	failA, failB = min(failA, totalA), min(failB, totalB)
	if totalA == 0 || totalB == 0 || failA+failB == 0 {
		return 1
	}
	n := totalA + totalB
	c1 := failA + failB // failures in both rows
	r1 := totalA
	hi := min(r1, c1)
	// The tail from failA up: the terms fall off geometrically past the
	// mode, so stop once they no longer change the sum at double
	// precision. Summing in the log domain relative to the first term
	// keeps small tails (1e-30) exact instead of underflowing to 0.
	first := hypergeomLogPMF(failA, r1, c1, n)
	sum := 0.0
	for x := failA; x <= hi; x++ {
		t := math.Exp(hypergeomLogPMF(x, r1, c1, n) - first)
		sum += t
		if x > failA && t < sum*1e-17 {
			break
		}
	}
	p := math.Exp(first) * sum
	return math.Min(1, p)
}

// TwoProportionZ is the one-sided pooled two-proportion z test that group A
// fails more often than group B. It returns z and its p-value from the
// normal approximation, which is only trustworthy when each side expects
// at least ~5 failures and ~5 successes; FisherGreater is exact at any
// volume and is what the error gate uses. This one is kept for the status
// display ("z = 4.1"), which operators read more easily than a tail sum.
func TwoProportionZ(failA, totalA, failB, totalB uint64) (z, p float64) {
	if totalA == 0 || totalB == 0 {
		return 0, 1
	}
	pa := float64(failA) / float64(totalA)
	pb := float64(failB) / float64(totalB)
	pool := float64(failA+failB) / float64(totalA+totalB)
	se := math.Sqrt(pool * (1 - pool) * (1/float64(totalA) + 1/float64(totalB)))
	if se == 0 {
		return 0, 1
	}
	z = (pa - pb) / se
	return z, UpperTail(z)
}

// UpperTail is P(Z > z) for a standard normal Z.
func UpperTail(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// MannWhitneyResult is the outcome of a Mann-Whitney U test.
type MannWhitneyResult struct {
	// U is the statistic of the first sample: the number of pairs (a, b)
	// with a > b, ties counting one half.
	U float64
	// Z is the standardised statistic after the tie and continuity
	// corrections; positive means the first sample tends to be larger.
	Z float64
	// P is the one-sided p-value that the first sample is stochastically
	// larger (slower) than the second.
	P float64
}

// MannWhitneyGreater tests, with the normal approximation, whether sample a
// tends to be larger than sample b. Ties get average ranks and the variance
// is reduced by the tie correction; the continuity correction moves U half a
// unit toward the mean. For the R documentation's example (x = 0.80 0.83
// 1.89 1.04 1.45 1.38 1.91 1.64 0.73 1.46, y = 1.15 0.88 0.90 0.74 1.21) it
// gives W = U = 35 as R does. An empty sample gives P = 1.
func MannWhitneyGreater(a, b []float64) MannWhitneyResult {
	// Merge-count through a histogram whose bins are the distinct values:
	// the binned test on exact bins is the plain test.
	vals := make(map[float64][2]uint64, len(a)+len(b))
	for _, v := range a {
		c := vals[v]
		c[0]++
		vals[v] = c
	}
	for _, v := range b {
		c := vals[v]
		c[1]++
		vals[v] = c
	}
	keys := make([]float64, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	ca := make([]uint64, len(keys))
	cb := make([]uint64, len(keys))
	for i, k := range keys {
		ca[i], cb[i] = vals[k][0], vals[k][1]
	}
	return MannWhitneyBinned(ca, cb)
}

// MannWhitneyBinned is the Mann-Whitney U test on two histograms with the
// same ordered bins (counts per bin, not cumulative): every observation in
// a bin ties with every other in it. This is how the latency gate reads the
// gateway's duration histograms, which keep bucket counts, not samples; the
// tie correction is what keeps the test honest with coarse bins (most
// requests of a fast route share two or three buckets).
//
// The two slices must have the same length; a shorter one is read as zeros.
func MannWhitneyBinned(a, b []uint64) MannWhitneyResult {
	nbins := max(len(a), len(b))
	at := func(s []uint64, i int) float64 {
		if i < len(s) {
			return float64(s[i])
		}
		return 0
	}
	var n1, n2 float64
	for i := range nbins {
		n1 += at(a, i)
		n2 += at(b, i)
	}
	if n1 == 0 || n2 == 0 {
		return MannWhitneyResult{P: 1}
	}
	// U of a: for each bin, a's observations beat every b observation in
	// lower bins and tie (half) with b's in the same bin.
	var u, bBelow, ties float64
	for i := range nbins {
		ai, bi := at(a, i), at(b, i)
		u += ai*bBelow + 0.5*ai*bi
		bBelow += bi
		t := ai + bi
		ties += t*t*t - t
	}
	n := n1 + n2
	mean := n1 * n2 / 2
	// Variance with the tie correction: n1 n2 / 12 * ((n+1) - sum(t^3-t) / (n(n-1))).
	variance := n1 * n2 / 12 * ((n + 1) - ties/(n*(n-1)))
	if variance <= 0 { // every observation in one bin: no information
		return MannWhitneyResult{U: u, P: 1}
	}
	d := u - mean
	// Continuity correction: half a unit toward the mean.
	switch {
	case d > 0.5:
		d -= 0.5
	case d < -0.5:
		d += 0.5
	default:
		d = 0
	}
	z := d / math.Sqrt(variance)
	return MannWhitneyResult{U: u, Z: z, P: UpperTail(z)}
}

// Quantile estimates the q-quantile (0..1) of a histogram given by the upper
// bounds of its buckets and the count in each (not cumulative; a final
// +Inf bucket may have a count with bound math.Inf(1)). It interpolates
// linearly inside the bucket as Prometheus's histogram_quantile does, and
// returns the last finite bound when the quantile falls in +Inf. ok is
// false for an empty histogram.
func Quantile(q float64, bounds []float64, counts []uint64) (v float64, ok bool) {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 || len(bounds) == 0 {
		return 0, false
	}
	rank := q * float64(total)
	var cum float64
	lower := 0.0
	for i, c := range counts {
		if i >= len(bounds) {
			break
		}
		upper := bounds[i]
		if cum+float64(c) >= rank && c > 0 {
			if math.IsInf(upper, 1) {
				return lower, true
			}
			return lower + (upper-lower)*(rank-cum)/float64(c), true
		}
		cum += float64(c)
		if !math.IsInf(upper, 1) {
			lower = upper
		}
	}
	return lower, true
}
