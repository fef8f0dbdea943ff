// Package ficusbin builds the ficus binary from this checkout for tests
// that run its components as separate processes (e2e, docs/doctest).
package ficusbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Main builds cmd/ficus into a temporary directory, stores its path in
// *bin, runs the tests and removes the directory: call it from TestMain.
// A build failure exits the test binary with status 1.
func Main(m *testing.M, bin *string) {
	dir, err := os.MkdirTemp("", "ficus-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "building ficus:", err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, "ficus")
	build := exec.Command("go", "build", "-o", *bin, filepath.Join(moduleRoot(), "cmd", "ficus"))
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cmd/ficus:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// moduleRoot is the checkout's root: two levels above this file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
