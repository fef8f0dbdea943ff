package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/go-logr/logr"
	flagd "github.com/open-feature/go-sdk-contrib/providers/flagd/pkg"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/ficus-gw/ficus/config"
)

// The flagd provider is built here, at the edge, so that gateway/decide
// (and everything importing it) links only the OpenFeature SDK, not
// flagd's gRPC and OpenTelemetry dependencies.

// newFlagProvider builds the OpenFeature provider that cfg describes: a flagd
// flag-definition file evaluated in process (re-read when replaced), or a
// flagd server at host:port whose flag definitions are synced and then
// evaluated in process (flagd's sync port, 8015 by default). It returns nil,
// nil when cfg names neither: no flags. A file that is missing or not JSON
// is an error here rather than a silent "every flag fails" later.
//
// flagd v0.6.0 passes log only to its configuration; its in-process
// evaluator still writes its own JSON log lines to stderr.
func newFlagProvider(cfg config.Flags, log *slog.Logger) (openfeature.FeatureProvider, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lr := logr.FromSlogHandler(log.With("component", "flagd").Handler())
	switch {
	case cfg.File != "" && cfg.Flagd != "":
		return nil, errors.New("flags: set file or flagd, not both")
	case cfg.File != "":
		b, err := os.ReadFile(cfg.File)
		if err != nil {
			return nil, fmt.Errorf("reading flag file: %w", err)
		}
		var doc struct {
			Flags map[string]json.RawMessage `json:"flags"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("flag file %s is not flagd flag-definition JSON: %w", cfg.File, err)
		}
		p, err := flagd.NewProvider(flagd.WithFileResolver(), flagd.WithOfflineFilePath(cfg.File), flagd.WithLogger(lr))
		if err != nil {
			return nil, fmt.Errorf("creating flagd file provider: %w", err)
		}
		return p, nil
	case cfg.Flagd != "":
		host, portS, err := net.SplitHostPort(cfg.Flagd)
		if err != nil {
			return nil, fmt.Errorf("flags.flagd %q: want host:port: %w", cfg.Flagd, err)
		}
		port, err := strconv.ParseUint(portS, 10, 16)
		if err != nil || port == 0 {
			return nil, fmt.Errorf("flags.flagd %q: bad port", cfg.Flagd)
		}
		p, err := flagd.NewProvider(flagd.WithInProcessResolver(), flagd.WithHost(host), flagd.WithPort(uint16(port)), flagd.WithLogger(lr))
		if err != nil {
			return nil, fmt.Errorf("creating flagd provider for %s: %w", cfg.Flagd, err)
		}
		return p, nil
	}
	return nil, nil
}
