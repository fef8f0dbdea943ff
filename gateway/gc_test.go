package gateway

import (
	"log/slog"
	"os"
	"runtime/debug"
	"testing"
)

// Not parallel: the GC target and the environment are process-wide.
func TestGCTargetDefaultsUnlessGOGCIsSet(t *testing.T) {
	t.Setenv("GOGC", "") // restores the environment after the test
	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	log := slog.New(slog.DiscardHandler)

	setGCPercent(log)
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Fatalf("GOGC unset: target %d, want the gateway's default %d", got, DefaultGCPercent)
	}
	t.Setenv("GOGC", "200")
	setGCPercent(log)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC set by the operator: target changed to %d; it must be left alone", got)
	}
}
