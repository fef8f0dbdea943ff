package loopback

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenWritesTheBoundAddress(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "addr")
	ln, err := Listen("127.0.0.1:0", file)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.TrimSpace(string(b))
	if got != ln.Addr().String() {
		t.Fatalf("address file says %q, listener is on %q", got, ln.Addr())
	}
	if strings.HasSuffix(got, ":0") {
		t.Fatalf("address file has port 0: %q", got)
	}
	// The written address must be the one that accepts connections.
	c, err := net.Dial("tcp", got)
	if err != nil {
		t.Fatalf("dialling the published address: %v", err)
	}
	_ = c.Close()
}

func TestListenRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "localhost:0", "no-port"} {
		t.Run(addr, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "addr")
			ln, err := Listen(addr, file)
			if err == nil {
				_ = ln.Close()
				t.Fatalf("Listen(%q) accepted a non-loopback address", addr)
			}
			if _, statErr := os.Stat(file); statErr == nil {
				t.Fatalf("Listen(%q) failed but wrote the address file", addr)
			}
		})
	}
}

func TestCheckFixedWantsALoopbackIPAndARealPort(t *testing.T) {
	t.Parallel()
	for addr, ok := range map[string]bool{
		"127.0.0.1:18080": true,
		"[::1]:18080":     true,
		"127.0.0.1:0":     false, // each process would get its own port
		"0.0.0.0:18080":   false,
		"no-port":         false,
	} {
		if err := CheckFixed(addr); (err == nil) != ok {
			t.Errorf("CheckFixed(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}
