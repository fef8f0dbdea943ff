package decide

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const flagsV1 = `{"flags":{"products-backend":{"state":"ENABLED","variants":{"legacy":"legacy","new":"new"},"defaultVariant":"legacy"},
"orders-backend":{"state":"ENABLED","variants":{"legacy":"legacy"},"defaultVariant":"legacy"}}}`

const flagsV2 = `{"flags":{"products-backend":{"state":"ENABLED","variants":{"legacy":"legacy","new":"new"},"defaultVariant":"new"},
"orders-backend":{"state":"ENABLED","variants":{"legacy":"legacy"},"defaultVariant":"legacy"},
"search-backend":{"state":"DISABLED","variants":{"legacy":"legacy"},"defaultVariant":"legacy"}}}`

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := writeAtomic(path, []byte(body)); err != nil {
		t.Fatal(err)
	}
}

func TestFlagFileServesOnlyValidFilesAndReportsReloads(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "flags.json")
	writeFile(t, path, flagsV1)
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	var reloads []FlagReload
	f, err := OpenFlagFile(FlagFileOptions{Path: path, Registry: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		OnReload: func(r FlagReload) { reloads = append(reloads, r) }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	serving := func() string { b, _ := os.ReadFile(f.ServingPath()); return string(b) }
	if serving() != flagsV1 {
		t.Fatal("serving copy differs from the flag file")
	}
	v1 := f.Status().SHA256

	f.check() // unchanged: nothing happens
	writeFile(t, path, flagsV2)
	f.check()
	if serving() != flagsV2 || len(reloads) != 1 || reloads[0].OldSHA != v1 || reloads[0].NewSHA != sha([]byte(flagsV2)) ||
		strings.Join(reloads[0].Changed, ",") != "products-backend,search-backend" {
		t.Fatalf("after a valid change: reloads %+v", reloads)
	}

	for _, bad := range []struct{ body, want string }{
		{`{"flags":{"products-backend":{"state":"ENABLED","variants":{"legacy":"legacy"},"defaultVariant":"blue"}}}`, `defaultVariant: "blue" is not one of its variants`},
		{`{"flags": {`, "not JSON"},
		{`{"flag":{}}`, `no "flags" object`},
		{`{"flags":{"x":{"state":"ON","variants":{},"defaultVariant":"a"}}}`, "flags.x.state"},
	} {
		writeFile(t, path, bad.body)
		f.check()
		st := f.Status()
		if !strings.Contains(st.LastError, bad.want) || serving() != flagsV2 || st.SHA256 != sha([]byte(flagsV2)) {
			t.Fatalf("invalid file %s: status %+v, serving %q; want the error %q and the previous flags serving", bad.body, st, serving(), bad.want)
		}
	}
	if n := testutil.ToFloat64(f.errs); n != 4 || f.Status().ReloadErrors != 4 || len(reloads) != 1 {
		t.Fatalf("%v rejected reloads counted (status %d), %d reloads; want 4 and 1", n, f.Status().ReloadErrors, len(reloads))
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "flag file rejected") {
		t.Fatalf("no error log line for a rejected file:\n%s", logs.String())
	}
	writeFile(t, path, flagsV1)
	f.check()
	if st := f.Status(); st.LastError != "" || serving() != flagsV1 || len(reloads) != 2 {
		t.Fatalf("a good file after bad ones: %+v", st)
	}
	if _, err := OpenFlagFile(FlagFileOptions{Path: filepath.Join(t.TempDir(), "missing.json")}); err == nil {
		t.Fatal("a missing flag file at start was accepted")
	}
}
