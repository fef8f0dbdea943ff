package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/ficus-gw/ficus/config"
	"github.com/ficus-gw/ficus/gateway"
	"github.com/ficus-gw/ficus/gateway/admin"
	"github.com/ficus-gw/ficus/gateway/controlplane"
)

// fieldConfig is the audit log's field of configuration reloads.
const fieldConfig = "config"

// gatewayOptions are startGateway's optional settings.
type gatewayOptions struct {
	// configFile is the file the configuration was loaded from, and load
	// loads it again as the command did (paths resolved, demo ports
	// moved). Without them nothing reloads.
	configFile string
	load       func() (*config.Config, error)
}

// gatewayOption sets a gatewayOptions field.
type gatewayOption func(*gatewayOptions)

// reloadableFrom makes the gateway reload from path (SIGHUP and POST
// /admin/reload), loading it with load.
func reloadableFrom(path string, load func() (*config.Config, error)) gatewayOption {
	return func(o *gatewayOptions) { o.configFile, o.load = path, load }
}

// configReloader re-reads the configuration file, applies it through the
// gateway (all or nothing) and audits what changed.
type configReloader struct {
	file    string
	load    func() (*config.Config, error)
	gw      *gateway.Gateway
	store   controlplane.Store
	log     *slog.Logger
	replica string

	mu  sync.Mutex
	sha string // of the file last applied
}

func newConfigReloader(o gatewayOptions, store controlplane.Store, log *slog.Logger, replica string) *configReloader {
	if o.load == nil {
		return nil
	}
	r := &configReloader{file: o.configFile, load: o.load, store: store, log: log, replica: replica}
	r.sha, _ = fileSHA(o.configFile)
	return r
}

func fileSHA(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Reload is the admin.ReloadFunc: actor is who asked (a token's name, or
// "SIGHUP").
func (r *configReloader) Reload(ctx context.Context, actor string) (admin.ReloadResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sha, _ := fileSHA(r.file)
	next, err := r.load()
	if err == nil {
		if ps := checkFlags(next); len(ps) > 0 {
			err = &admin.ReloadRefused{Problems: ps}
		}
	}
	var changed []string
	if err == nil {
		changed, err = r.gw.Reload(next)
	}
	if err != nil {
		refused := &admin.ReloadRefused{}
		var ve *config.ValidationError
		var gr *gateway.ReloadRefusedError
		switch {
		case errors.As(err, &refused):
		case errors.As(err, &gr):
			refused.Problems = gr.Problems
		case errors.As(err, &ve):
			for _, p := range ve.Problems {
				refused.Problems = append(refused.Problems, p.String())
			}
		default:
			refused.Problems = []string{err.Error()}
		}
		r.log.Error("configuration file not reloaded; the running configuration keeps serving",
			"file", r.file, "actor", actor, "problems", refused.Problems)
		return admin.ReloadResult{}, refused
	}
	res := admin.ReloadResult{Changed: changed, SHA256: sha}
	if len(changed) == 0 {
		r.log.Info("configuration file reloaded: nothing changed", "file", r.file, "actor", actor)
		return res, nil
	}
	old, _ := json.Marshal(map[string]any{"sha256": r.sha})
	nw, _ := json.Marshal(map[string]any{"sha256": sha, "changed": changed})
	if _, err := r.store.Record(ctx, controlplane.AuditEntry{
		Actor: actor, Field: fieldConfig, Old: old, New: nw,
		Reason: fmt.Sprintf("configuration file %s reloaded by replica %s", r.file, r.replica),
	}); err != nil {
		r.log.Warn("configuration reload not audited: control plane unavailable", "file", r.file, "err", err)
	}
	r.sha = sha
	return res, nil
}

// onSIGHUP reloads on every SIGHUP until ctx ends.
func (r *configReloader) onSIGHUP(ctx context.Context) error {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, _ = r.Reload(rctx, "SIGHUP")
			cancel()
		}
	}
}
