package decide

import (
	"fmt"
	"os"
	"sort"
)

// CheckFlagFile reads and validates a flagd flag-definition file exactly as
// a gateway would before serving it, and returns the names of the flags it
// defines, sorted. It is what `--check` runs.
func CheckFlagFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading flag file: %w", err)
	}
	flags, err := parseFlagFile(b)
	if err != nil {
		return nil, fmt.Errorf("flag file %s: %w", path, err)
	}
	names := make([]string, 0, len(flags))
	for n := range flags {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}
