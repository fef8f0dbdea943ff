// Package loopback opens the benchmark programs' listeners. The load
// benchmark must never expose a port off the machine, and the script that
// drives it must learn each free port without guessing, so both rules live
// here once.
package loopback

import (
	"fmt"
	"net"
	"os"
)

// Listen listens on addr, which must be a loopback IP and a port (port 0
// picks a free one). When addrFile is not empty, the bound host:port and a
// newline are written to it atomically (temp file + rename), so a script
// polling for the file never reads it half-written.
func Listen(addr, addrFile string) (net.Listener, error) {
	if _, err := check(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	if addrFile == "" {
		return ln, nil
	}
	if err := writeAtomic(addrFile, ln.Addr().String()+"\n"); err != nil {
		_ = ln.Close()
		return nil, err
	}
	return ln, nil
}

// CheckFixed accepts a loopback IP with a fixed port: the address several
// processes share (SO_REUSEPORT), which port 0 cannot be, since each
// process would get a port of its own.
func CheckFixed(addr string) error {
	port, err := check(addr)
	if err != nil {
		return err
	}
	if port == "0" {
		return fmt.Errorf("listen address %q: needs a fixed port, not 0", addr)
	}
	return nil
}

// check accepts a loopback IP and a port, and returns the port.
func check(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("listen address %q: must be a loopback IP such as 127.0.0.1", addr)
	}
	return port, nil
}

func writeAtomic(path, s string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		return fmt.Errorf("writing the address file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("publishing the address file: %w", err)
	}
	return nil
}
