package gateway

import (
	"github.com/ficus-gw/ficus/config"
)

// ReloadRefusedError is a configuration Reload did not apply: the running
// one keeps serving. Problems name each key and why.
type ReloadRefusedError struct{ Problems []string }

func (e *ReloadRefusedError) Error() string {
	msg := "configuration not reloaded:"
	for _, p := range e.Problems {
		msg += "\n  - " + p
	}
	return msg
}

// Reload applies next, a loaded and validated configuration, as one
// atomic swap: requests already in flight finish with the routes and
// upstreams they started with, every later request gets the new ones.
// Only what config.ReloadPlan calls reloadable may differ from the running
// configuration; anything else refuses the whole file. Upstreams whose
// settings did not change keep their connections and breaker state. It
// returns the key paths that changed (none when next matches).
func (g *Gateway) Reload(next *config.Config) (changed []string, err error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	cur := g.gen.Load()
	changed, restart := config.ReloadPlan(cur.cfg, next)
	if len(restart) > 0 {
		return nil, &ReloadRefusedError{Problems: restart}
	}
	if len(changed) == 0 {
		return []string{}, nil
	}
	gen, err := g.build(next, cur)
	if err != nil {
		return nil, &ReloadRefusedError{Problems: []string{err.Error()}}
	}
	g.gen.Store(gen)
	for name, up := range cur.ups {
		if gen.ups[name] != up {
			up.CloseIdle() // in-flight requests keep theirs until they finish
			g.staleCarry[name].Add(up.StaleRetries())
		}
	}
	g.log.Info("configuration reloaded", "changed", changed)
	return changed, nil
}
