package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"go.yaml.in/yaml/v3"
)

// How a read command prints: a table for people, JSON or YAML for scripts.
// Every read command of `ficus ctl` takes -o through addOutputFlag and
// prints through writeOutput, so that the formats behave the same
// everywhere:
//
//	flags: func(fs *flag.FlagSet) { addOutputFlag(fs) },
//	run: func(...) error {
//		format, err := outputFormat(fs)
//		if err != nil { return err }
//		...
//		return writeOutput(env.stdout, format, value, func(w io.Writer) error { return render(w, value) })
//	}
//
// JSON and YAML carry the same keys (YAML is made from the JSON encoding,
// so the json tags name the fields in both); JSON is indented, one
// document per value; with --watch, one document per change.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// addOutputFlag registers -o (alias --output) on fs, default table.
func addOutputFlag(fs *flag.FlagSet) {
	fs.String("o", formatTable, "output: table, json or yaml")
	fs.Var(aliasValue{fs, "o"}, "output", "same as -o")
}

// aliasValue sets another flag of the same set.
type aliasValue struct {
	fs   *flag.FlagSet
	name string
}

func (a aliasValue) String() string {
	if a.fs == nil {
		return ""
	}
	return a.fs.Lookup(a.name).Value.String()
}
func (a aliasValue) Set(s string) error { return a.fs.Set(a.name, s) }

// outputFormat returns the -o value of fs, or a usage error.
func outputFormat(fs *flag.FlagSet) (string, error) {
	f := fs.Lookup("o")
	if f == nil {
		return formatTable, nil
	}
	switch v := f.Value.String(); v {
	case formatTable, formatJSON, formatYAML:
		return v, nil
	default:
		return "", usageError{fmt.Errorf("-o %q: want table, json or yaml", v)}
	}
}

// writeOutput prints v as format; table renders the human form.
func writeOutput(w io.Writer, format string, v any, table func(io.Writer) error) error {
	switch format {
	case formatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case formatYAML:
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var generic any
		if err := json.Unmarshal(b, &generic); err != nil {
			return err
		}
		out, err := yaml.Marshal(generic)
		if err != nil {
			return err
		}
		if _, err := w.Write([]byte("---\n")); err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	default:
		return table(w)
	}
}

// addWatchFlag registers --watch and --interval on fs.
func addWatchFlag(fs *flag.FlagSet) {
	fs.Bool("watch", false, "keep watching: print again whenever the answer changes (Ctrl-C stops)")
	fs.Duration("interval", 2*time.Second, "with --watch, how often to ask")
}

// watching reports whether --watch was given.
func watching(fs *flag.FlagSet) bool {
	f := fs.Lookup("watch")
	return f != nil && f.Value.String() == "true"
}

// watch calls render every interval until ctx ends and prints its output
// whenever it differs from the last one printed (a table is headed by the
// time). render gets its own call limit each time. A failing call is
// printed on errw and retried; watch returns nil when ctx ends.
func watch(ctx context.Context, fs *flag.FlagSet, callTimeout time.Duration, w, errw io.Writer, format string,
	render func(ctx context.Context, w io.Writer) error) error {
	interval, _ := time.ParseDuration(fs.Lookup("interval").Value.String())
	if interval < 100*time.Millisecond {
		return usageError{errors.New("--interval must be at least 100ms")}
	}
	var last []byte
	var lastErr string
	for {
		var buf bytes.Buffer
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		err := render(cctx, &buf)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if err.Error() != lastErr {
				fmt.Fprintf(errw, "%s %v (still watching)\n", time.Now().Format(time.TimeOnly), err)
				lastErr = err.Error()
			}
		case !bytes.Equal(buf.Bytes(), last):
			lastErr = ""
			if format == formatTable {
				fmt.Fprintf(w, "--- %s\n", time.Now().Format(time.TimeOnly))
			}
			if _, err := w.Write(buf.Bytes()); err != nil {
				return err
			}
			last = buf.Bytes()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}
