package shadow

import (
	"testing"
	"time"
)

func TestBatchSizeFollowsTheTargetsLatency(t *testing.T) {
	t.Parallel()
	rs := &routeShadow{}
	rs.batch.Store(firstBatch)
	for range 6 { // 1, 2, 4, 8, 16, 32
		rs.adapt(int(rs.batch.Load()), time.Millisecond, false)
	}
	if got := rs.batch.Load(); got != maxBatch {
		t.Fatalf("after fast full batches the size is %d, want %d", got, maxBatch)
	}
	rs.adapt(1, time.Millisecond, false)
	if got := rs.batch.Load(); got != maxBatch {
		t.Fatalf("a fast single copy (little traffic) changed the size to %d", got)
	}
	rs.adapt(maxBatch, 100*time.Millisecond, false)
	if got := rs.batch.Load(); got != maxBatch/2 {
		t.Fatalf("after a slow batch of %d the size is %d, want %d", maxBatch, got, maxBatch/2)
	}
	rs.adapt(4, time.Millisecond, true)
	if got := rs.batch.Load(); got != 1 {
		t.Fatalf("after a failed batch the size is %d, want 1", got)
	}
	rs.adapt(1, time.Millisecond, false)
	if got := rs.batch.Load(); got != 2 {
		t.Fatalf("a fast single exchange grows the size back to 2, got %d", got)
	}
}
