// Package reqlog is how a service logs its requests without flooding: a
// request that succeeded (or that the client got wrong, 4xx) is logged at
// debug level, so `--log-level debug` shows every request; a failed one
// (5xx) is logged at error level, rate-limited to a few lines per window,
// and the first line after a quiet spell says how many were suppressed. An
// outage then writes a few lines a minute with counts, not one per request,
// and an idle service polled by the sync writes nothing at info.
package reqlog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults of New: at most DefaultBurst failure lines per DefaultWindow.
const (
	DefaultWindow = 10 * time.Second
	DefaultBurst  = 5
)

// Logger logs requests of one service. The zero value is not usable; use
// New. It is safe for concurrent use.
type Logger struct {
	log    *slog.Logger
	window time.Duration
	burst  int
	now    func() time.Time

	mu         sync.Mutex
	start      time.Time // of the current window
	logged     int       // failure lines in the current window
	suppressed int       // failure lines not written since the last one
}

// New returns a Logger writing to log with the default limits.
func New(log *slog.Logger) *Logger {
	return NewWithLimits(log, DefaultWindow, DefaultBurst, time.Now)
}

// NewWithLimits returns a Logger writing at most burst failure lines per
// window (tests pass a fake clock).
func NewWithLimits(log *slog.Logger, window time.Duration, burst int, now func() time.Time) *Logger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Logger{log: log, window: window, burst: max(1, burst), now: now}
}

// Request logs one request whose response had status. attrs are slog
// key-value pairs (method, path, duration, request_id ...).
func (l *Logger) Request(ctx context.Context, status int, attrs ...any) {
	if status < 500 {
		if l.log.Enabled(ctx, slog.LevelDebug) {
			l.log.Log(ctx, slog.LevelDebug, "request", append(attrs, "status", status)...)
		}
		return
	}
	ok, suppressed := l.Allow()
	if !ok {
		return
	}
	attrs = append(attrs, "status", status)
	if suppressed > 0 {
		attrs = append(attrs, "suppressed_since_last", suppressed)
	}
	l.log.Log(ctx, slog.LevelError, "request failed", attrs...)
}

// Allow reports whether a failure line may be written now, and how many
// were suppressed before it; for callers that write the line themselves
// (the gateway's hot path, with slog.LogAttrs).
func (l *Logger) Allow() (bool, int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.window {
		l.start, l.logged = now, 0
	}
	if l.logged >= l.burst {
		l.suppressed++
		return false, 0
	}
	l.logged++
	s := l.suppressed
	l.suppressed = 0
	return true, s
}
