package decide

// bucketsPerPercent: buckets run 0..9999, so a canary percent has two
// decimal places of resolution (0.01 % = one bucket).
const (
	bucketCount       = 10000
	bucketsPerPercent = bucketCount / 100
)

// FNV-1a 64-bit (FNV is public domain; constants from the reference
// description). It is stable across processes and releases, which is what
// keeps a user on the same side after a restart or on another replica;
// it needs no allocation.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// bucket returns the user's sticky bucket for a cohort:
// FNV-1a(userKey + "\x00" + cohort) mod 10000. Routes sharing a cohort
// give a user the same bucket and therefore the same side.
func bucket(key []byte, cohort string) uint32 {
	h := uint64(fnvOffset64)
	for _, b := range key {
		h ^= uint64(b)
		h *= fnvPrime64
	}
	return finishBucket(h, cohort)
}

// bucketString is bucket for a string key (the request id).
func bucketString(key string, cohort string) uint32 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= fnvPrime64
	}
	return finishBucket(h, cohort)
}

func finishBucket(h uint64, cohort string) uint32 {
	h *= fnvPrime64 // the "\x00" separator: xor with 0 is a no-op
	for i := 0; i < len(cohort); i++ {
		h ^= uint64(cohort[i])
		h *= fnvPrime64
	}
	return uint32(h % bucketCount)
}
