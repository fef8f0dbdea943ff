package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// argsEnv makes the test binary act as bareproxy with these arguments
// (tab-separated), so that Fiber's Prefork, which re-executes its own
// binary, starts children that serve.
const argsEnv = "BAREPROXY_TEST_ARGS"

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(argsEnv); ok {
		if err := run(strings.Split(args, "\t")); err != nil {
			os.Stderr.WriteString("bareproxy: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// children lists the PIDs whose parent is pid.
func children(t *testing.T, pid int) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// After "pid (comm) ": state, ppid.
		rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
		fields := strings.Fields(rest)
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			out = append(out, child)
		}
	}
	return out
}

func TestPreforkServesFromOneChildPerCPUAndStopsThemAll(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "from upstream "+r.URL.Path)
	}))
	t.Cleanup(up.Close)
	// A port that was free a moment ago: Prefork needs a fixed one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2",
		argsEnv+"="+strings.Join([]string{"-prefork", "-listen", addr, "-upstream", up.URL}, "\t"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	parent := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		for _, c := range children(t, parent) {
			_ = syscall.Kill(c, syscall.SIGKILL)
		}
		_ = cmd.Process.Kill()
	})

	// Until the children listen: bounded (a race-instrumented binary
	// starting twice more on a busy machine can take seconds), each try
	// under the client's timeout.
	var body string
	for i := 0; ; i++ {
		resp, err := httpClient.Get("http://" + addr + "/api/v1/products/P-1")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if i == 600 {
			t.Fatalf("the preforked proxy never answered on %s: %v", addr, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	if body != "from upstream /api/v1/products/P-1" {
		t.Fatalf("body %q, want the upstream's answer", body)
	}
	// One child answered; the parent forks both before either serves, but
	// /proc may lag a moment behind.
	kids := children(t, parent)
	for i := 0; len(kids) < 2 && i < 200; i++ {
		time.Sleep(25 * time.Millisecond)
		kids = children(t, parent)
	}
	if len(kids) != 2 {
		t.Fatalf("the parent has %d children (%v), want one per CPU: 2", len(kids), kids)
	}

	if err := syscall.Kill(parent, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the parent exited with %v after SIGTERM, want status 0", err)
		}
	case <-ctx.Done():
		t.Fatal("the parent did not exit after SIGTERM")
	}
	for _, k := range kids {
		if err := syscall.Kill(k, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("child %d outlived its parent (signal 0: %v)", k, err)
		}
	}
}

func TestPreforkRefusesPortZero(t *testing.T) {
	t.Parallel()
	err := run([]string{"-prefork", "-listen", "127.0.0.1:0", "-upstream", "http://127.0.0.1:9"})
	if err == nil || !strings.Contains(err.Error(), "fixed port") {
		t.Fatalf("run with -prefork on port 0 = %v, want a fixed-port error", err)
	}
}
