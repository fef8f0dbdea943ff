package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemoLogsGoToComponentFilesAndWarningsToTheTerminal(t *testing.T) {
	dir := t.TempDir()
	var term bytes.Buffer
	env := &environment{stdout: &term, stderr: &term, logLevel: new(slog.LevelVar), logFormat: "text"}
	logs, err := newDemoLogs(dir, env)
	if err != nil {
		t.Fatal(err)
	}
	root := logs.Logger()
	cat := root.With("component", "catalog")
	cat.Info("catalog service listening", "addr", "x")
	cat.With("component", "outbox").Info("delivered") // a subsystem stays in its component's file
	gw := root.With("component", "gateway").WithGroup("g")
	gw.Warn("circuit breaker changed state", "to", "open")
	gw.Debug("request") // below the level: nowhere
	root.Info("no component")
	_ = logs.Close()

	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return string(b)
	}
	if c := read("catalog.log"); strings.Count(c, "\n") != 2 || !strings.Contains(c, "delivered") {
		t.Errorf("catalog.log:\n%s", c)
	}
	if g := read("gateway.log"); !strings.Contains(g, "g.to=open") || strings.Contains(g, "request") {
		t.Errorf("gateway.log:\n%s", g)
	}
	if f := read("ficus.log"); !strings.Contains(f, "no component") {
		t.Errorf("ficus.log:\n%s", f)
	}
	if s := term.String(); strings.Count(s, "\n") != 1 || !strings.Contains(s, "circuit breaker changed state") {
		t.Errorf("the terminal shows more or less than the warning:\n%s", s)
	}
}
