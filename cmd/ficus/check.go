package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway/decide"
)

// resolveFlagFile makes a relative flags.file relative to the configuration
// file's directory, as docs/configuration.md says.
func resolveFlagFile(cfg *config.Config, cfgPath string) {
	if cfgPath != "" && cfg.Flags.File != "" && !filepath.IsAbs(cfg.Flags.File) {
		cfg.Flags.File = filepath.Join(filepath.Dir(cfgPath), cfg.Flags.File)
	}
}

// checkFlags validates what the configuration needs from its flag file:
// the file parses and validates as a gateway would serve it, and every
// flag a route names is defined in it. It returns every problem found.
func checkFlags(cfg *config.Config) []string {
	if cfg.Flags.File == "" {
		return nil
	}
	names, err := decide.CheckFlagFile(cfg.Flags.File)
	if err != nil {
		return []string{"flags.file: " + err.Error()}
	}
	known := make(map[string]bool, len(names))
	for _, n := range names {
		known[n] = true
	}
	var problems []string
	for i, r := range cfg.Routes {
		if r.Flag != "" && !known[r.Flag] {
			problems = append(problems, fmt.Sprintf("routes[%d].flag: %q is not defined in %s (defined: %v)", i, r.Flag, cfg.Flags.File, names))
		}
	}
	return problems
}

// reportCheck prints the outcome of --check: "valid" on stdout, or every
// problem and exit status 1.
func reportCheck(w io.Writer, path string, cfg *config.Config) error {
	if ps := checkFlags(cfg); len(ps) > 0 {
		msg := fmt.Sprintf("%s: the configuration is valid but its flags are not, %d problem(s):", path, len(ps))
		for _, p := range ps {
			msg += "\n  - " + p
		}
		return exitCodeError{code: 1, msg: msg}
	}
	fmt.Fprintf(w, "%s: valid (%d routes, %d upstreams)\n", path, len(cfg.Routes), len(cfg.Upstreams))
	return nil
}
