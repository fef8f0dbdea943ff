package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// demoLogs sends each component's log lines to its own file under dir
// (legacy.log, catalog.log, gateway.log, ...; lines of no component go to
// ficus.log) and copies warnings and errors to the terminal, so that the
// terminal keeps the banner and what needs attention.
type demoLogs struct {
	dir      string
	level    slog.Leveler
	json     bool
	terminal slog.Handler

	mu    sync.Mutex
	files map[string]*os.File
}

func newDemoLogs(dir string, env *environment) (*demoLogs, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the log directory: %w", err)
	}
	return &demoLogs{
		dir: dir, level: env.logLevel, json: env.logFormat == "json", files: map[string]*os.File{},
		terminal: slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: atLeast{env.logLevel, slog.LevelWarn}}),
	}, nil
}

// atLeast is the higher of a leveler and a floor.
type atLeast struct {
	l     slog.Leveler
	floor slog.Level
}

func (a atLeast) Level() slog.Level { return max(a.l.Level(), a.floor) }

// file returns the handler writing to component's file, opened (append) on
// first use.
func (d *demoLogs) file(component string) slog.Handler {
	d.mu.Lock()
	defer d.mu.Unlock()
	f, ok := d.files[component]
	var w io.Writer = io.Discard
	if !ok {
		var err error
		f, err = os.OpenFile(filepath.Join(d.dir, component+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			d.files[component] = f
		}
	}
	if f != nil {
		w = f
	}
	opts := &slog.HandlerOptions{Level: d.level}
	if d.json {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// Close closes every log file.
func (d *demoLogs) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range d.files {
		_ = f.Close()
	}
	return nil
}

// Logger returns the root logger of the demo.
func (d *demoLogs) Logger() *slog.Logger {
	return slog.New(&demoHandler{logs: d, file: d.file("ficus"), terminal: d.terminal})
}

// demoHandler picks its file by the first "component" attribute given to
// With (a subsystem naming itself again stays in its component's file),
// replaying the attributes and groups given before it on the new file's
// handler.
type demoHandler struct {
	logs      *demoLogs
	component string
	ops       []func(slog.Handler) slog.Handler // With/WithGroup so far, in order
	file      slog.Handler
	terminal  slog.Handler
}

func (h *demoHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.file.Enabled(ctx, l) || h.terminal.Enabled(ctx, l)
}

func (h *demoHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if h.file.Enabled(ctx, r.Level) {
		err = h.file.Handle(ctx, r.Clone())
	}
	if h.terminal.Enabled(ctx, r.Level) {
		err = h.terminal.Handle(ctx, r)
	}
	return err
}

func (h *demoHandler) with(op func(slog.Handler) slog.Handler, component string) *demoHandler {
	n := &demoHandler{logs: h.logs, component: h.component, ops: append(h.ops[:len(h.ops):len(h.ops)], op), terminal: op(h.terminal)}
	if component == "" || h.component != "" {
		n.file = op(h.file)
		return n
	}
	n.component = component
	n.file = h.logs.file(component)
	for _, o := range n.ops {
		n.file = o(n.file)
	}
	return n
}

func (h *demoHandler) WithAttrs(as []slog.Attr) slog.Handler {
	component := ""
	for _, a := range as {
		if a.Key == "component" {
			component = a.Value.String()
		}
	}
	return h.with(func(x slog.Handler) slog.Handler { return x.WithAttrs(as) }, component)
}

func (h *demoHandler) WithGroup(name string) slog.Handler {
	return h.with(func(x slog.Handler) slog.Handler { return x.WithGroup(name) }, "")
}
