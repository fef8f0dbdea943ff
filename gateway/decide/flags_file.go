package decide

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricFlagReloadErrors counts flag files rejected on reload.
const MetricFlagReloadErrors = "ficus_flags_reload_errors_total"

// FlagReload describes one accepted change of the flag file.
type FlagReload struct {
	Path           string
	OldSHA, NewSHA string // hex SHA-256 of the file's bytes
	// Changed names the flags added, removed or modified, sorted.
	Changed []string
}

// FlagFileStatus is the flag file's reload state.
type FlagFileStatus struct {
	Path         string
	SHA256       string
	LoadedAt     time.Time
	ReloadErrors uint64
	LastError    string
	LastErrorAt  time.Time
}

// FlagFileOptions configure a FlagFile.
type FlagFileOptions struct {
	// Path is the operator's flag file (flagd flag-definition JSON).
	Path string
	// Interval between checks of the file. Default 1 s.
	Interval time.Duration
	// OnReload is called (from Run's goroutine) after each accepted
	// change. Nil: nothing.
	OnReload func(FlagReload)
	// Registry gets ficus_flags_reload_errors_total. Nil: none.
	Registry prometheus.Registerer
	Logger   *slog.Logger
}

// FlagFile stands between the operator's flag file and the flag provider:
// the provider reads a private serving copy, and only a file that parses
// and validates replaces that copy. An invalid file is rejected (logged,
// counted, reported by Status) while the last good flags keep serving.
type FlagFile struct {
	o        FlagFileOptions
	serving  string
	errs     prometheus.Counter
	mu       sync.Mutex
	status   FlagFileStatus
	lastBody []byte // the bytes last seen at Path (valid or not)
	good     map[string]json.RawMessage
}

// OpenFlagFile validates the file at o.Path and writes its serving copy
// (in the system's temporary directory). An invalid file is an error here:
// a gateway does not start without its flags. Close removes the copy.
func OpenFlagFile(o FlagFileOptions) (*FlagFile, error) {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	f := &FlagFile{o: o, errs: prometheus.NewCounter(prometheus.CounterOpts{
		Name: MetricFlagReloadErrors,
		Help: "Flag file reloads rejected because the file was unreadable or invalid; the previous flags kept serving.",
	})}
	b, err := os.ReadFile(o.Path)
	if err != nil {
		return nil, fmt.Errorf("reading flag file: %w", err)
	}
	flags, err := parseFlagFile(b)
	if err != nil {
		return nil, fmt.Errorf("flag file %s: %w", o.Path, err)
	}
	tmp, err := os.CreateTemp("", "ficus-flags-serving-*.json")
	if err != nil {
		return nil, fmt.Errorf("creating the serving copy of the flag file: %w", err)
	}
	_ = tmp.Close()
	f.serving = tmp.Name()
	if err := writeAtomic(f.serving, b); err != nil {
		_ = os.Remove(f.serving)
		return nil, err
	}
	if o.Registry != nil {
		if err := o.Registry.Register(f.errs); err != nil {
			_ = os.Remove(f.serving)
			return nil, err
		}
	}
	f.lastBody, f.good = b, flags
	f.status = FlagFileStatus{Path: o.Path, SHA256: sha(b), LoadedAt: time.Now()}
	return f, nil
}

// ServingPath is the file the flag provider must read.
func (f *FlagFile) ServingPath() string { return f.serving }

// Status returns the reload state.
func (f *FlagFile) Status() FlagFileStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

// Run checks the file every interval until ctx ends.
func (f *FlagFile) Run(ctx context.Context) error {
	t := time.NewTicker(f.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			f.check()
		}
	}
}

// Close removes the serving copy.
func (f *FlagFile) Close() error { return os.Remove(f.serving) }

// check reloads the file when its bytes changed.
func (f *FlagFile) check() {
	b, err := os.ReadFile(f.o.Path)
	f.mu.Lock()
	if err == nil && bytes.Equal(b, f.lastBody) {
		f.mu.Unlock()
		return
	}
	var flags map[string]json.RawMessage
	if err == nil {
		f.lastBody = b
		flags, err = parseFlagFile(b)
	} else {
		f.lastBody = nil // report again once it is readable
	}
	if err == nil {
		err = writeAtomic(f.serving, b)
	}
	if err != nil {
		if f.status.LastError == err.Error() && errors.Is(err, os.ErrNotExist) {
			f.mu.Unlock()
			return // still missing: counted and logged once
		}
		f.errs.Inc()
		f.status.ReloadErrors++
		f.status.LastError, f.status.LastErrorAt = err.Error(), time.Now()
		f.mu.Unlock()
		f.o.Logger.Error("flag file rejected; the previous flags keep serving", "path", f.o.Path, "err", err,
			"serving_sha256", f.status.SHA256, "counted_in", MetricFlagReloadErrors)
		return
	}
	rel := FlagReload{Path: f.o.Path, OldSHA: f.status.SHA256, NewSHA: sha(b), Changed: changedFlags(f.good, flags)}
	f.good = flags
	f.status.SHA256, f.status.LoadedAt = rel.NewSHA, time.Now()
	f.status.LastError, f.status.LastErrorAt = "", time.Time{}
	f.mu.Unlock()
	f.o.Logger.Info("flag file reloaded", "path", f.o.Path, "old_sha256", rel.OldSHA, "new_sha256", rel.NewSHA, "changed", rel.Changed)
	if f.o.OnReload != nil {
		f.o.OnReload(rel)
	}
}

// flagDef is the part of a flagd flag definition checked before a file is
// served.
type flagDef struct {
	State          string                     `json:"state"`
	Variants       map[string]json.RawMessage `json:"variants"`
	DefaultVariant *string                    `json:"defaultVariant"`
}

// parseFlagFile checks flagd flag-definition JSON and returns each flag's
// definition (compacted, for comparison).
func parseFlagFile(b []byte) (map[string]json.RawMessage, error) {
	var doc struct {
		Flags map[string]json.RawMessage `json:"flags"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if doc.Flags == nil {
		return nil, errors.New(`no "flags" object: not flagd flag-definition JSON`)
	}
	var problems []string
	out := make(map[string]json.RawMessage, len(doc.Flags))
	for name, raw := range doc.Flags {
		var d flagDef
		if err := json.Unmarshal(raw, &d); err != nil {
			problems = append(problems, fmt.Sprintf("flags.%s: %v", name, err))
			continue
		}
		if d.State != "ENABLED" && d.State != "DISABLED" {
			problems = append(problems, fmt.Sprintf("flags.%s.state: must be ENABLED or DISABLED (got %q)", name, d.State))
		}
		if len(d.Variants) == 0 {
			problems = append(problems, fmt.Sprintf("flags.%s.variants: must name at least one variant", name))
		}
		if d.DefaultVariant == nil {
			problems = append(problems, fmt.Sprintf("flags.%s.defaultVariant: required", name))
		} else if _, ok := d.Variants[*d.DefaultVariant]; !ok && len(d.Variants) > 0 {
			problems = append(problems, fmt.Sprintf("flags.%s.defaultVariant: %q is not one of its variants", name, *d.DefaultVariant))
		}
		var c bytes.Buffer
		if err := json.Compact(&c, raw); err == nil {
			out[name] = c.Bytes()
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, errors.New(joinProblems(problems))
	}
	return out, nil
}

func joinProblems(ps []string) string {
	var b bytes.Buffer
	for i, p := range ps {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p)
	}
	return b.String()
}

func changedFlags(old, new map[string]json.RawMessage) []string {
	var out []string
	for name, def := range new {
		if o, ok := old[name]; !ok || !bytes.Equal(o, def) {
			out = append(out, name)
		}
	}
	for name := range old {
		if _, ok := new[name]; !ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeAtomic replaces path with b by rename, so that the provider's
// watcher never reads a half-written file.
func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ficus-flags-*.tmp")
	if err != nil {
		return fmt.Errorf("writing the serving flag file: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing the serving flag file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing the serving flag file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("replacing the serving flag file: %w", err)
	}
	return nil
}
