package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ficus-gw/ficus/config"
)

func TestNewFlagProvider(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("flags: yes"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     config.Flags
		wantErr bool
		wantNil bool
	}{
		{"no flags", config.Flags{}, false, true},
		{"missing file", config.Flags{File: filepath.Join(dir, "nope.json")}, true, false},
		{"not JSON", config.Flags{File: bad}, true, false},
		{"both", config.Flags{File: bad, Flagd: "127.0.0.1:8015"}, true, false},
		{"flagd without port", config.Flags{Flagd: "127.0.0.1"}, true, false},
		{"flagd server", config.Flags{Flagd: "127.0.0.1:8015"}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newFlagProvider(tc.cfg, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && (p == nil) != tc.wantNil {
				t.Fatalf("provider = %v, want nil: %v", p, tc.wantNil)
			}
		})
	}
}
