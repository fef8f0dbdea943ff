package reqlog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestSuccessesAtDebugFailuresRateLimitedWithCounts(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	lv := new(slog.LevelVar)
	now := time.Unix(1000, 0)
	l := NewWithLimits(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: lv})), 10*time.Second, 3, func() time.Time { return now })
	ctx := context.Background()
	for range 100 {
		l.Request(ctx, 200, "path", "/ok")
		l.Request(ctx, 404, "path", "/missing")
	}
	if buf.Len() != 0 {
		t.Fatalf("successes and client errors logged at info:\n%s", buf.String())
	}
	for range 50 { // an outage: 50 failures in one window
		l.Request(ctx, 503, "path", "/down")
	}
	if n := strings.Count(buf.String(), "\n"); n != 3 {
		t.Fatalf("%d failure lines in one window, want 3 (the burst):\n%s", n, buf.String())
	}
	now = now.Add(10 * time.Second)
	buf.Reset()
	l.Request(ctx, 502, "path", "/down")
	if !strings.Contains(buf.String(), "suppressed_since_last=47") || !strings.Contains(buf.String(), "level=ERROR") {
		t.Fatalf("the next window's first line does not count the suppressed ones:\n%s", buf.String())
	}
	lv.Set(slog.LevelDebug)
	buf.Reset()
	l.Request(ctx, 200, "path", "/ok", "request_id", "r1")
	if !strings.Contains(buf.String(), "level=DEBUG") || !strings.Contains(buf.String(), "request_id=r1") {
		t.Fatalf("--log-level debug does not show each request:\n%s", buf.String())
	}
}
