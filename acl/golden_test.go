package acl

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/apierr"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden from the current translators")

// translateGolden decodes one legacy document, chosen by the file name's
// prefix, and translates it into what the new contract would carry. Errors
// are part of the output: an unknown value must fail loudly, and the golden
// file pins how.
func translateGolden(t *testing.T, tr Translator, name string, raw []byte) any {
	t.Helper()
	fail := func(err error) any {
		kind := "other"
		var le *LegacyError
		switch {
		case errors.As(err, &le):
			ae := APIError(OpPlaceOrder, le)
			return map[string]any{"legacyError": le.Code, "contract": map[string]any{"status": apierr.Status(ae.Code), "code": ae.Code}}
		case errors.Is(err, ErrUnknownValue):
			kind = "unknown-value"
		case errors.Is(err, ErrInvalidValue):
			kind = "invalid-value"
		case errors.Is(err, ErrMalformed):
			kind = "malformed"
		}
		return map[string]any{"error": map[string]string{"kind": kind, "message": err.Error()}}
	}
	products := func(as []Artikel) any {
		out := []Product{}
		for _, a := range as {
			p, err := tr.Product(a)
			if err != nil {
				return fail(err)
			}
			out = append(out, p)
		}
		return out
	}
	orders := func(as []Auftrag) any {
		out := []Order{}
		for _, a := range as {
			o, err := tr.Order(a)
			if err != nil {
				return fail(err)
			}
			out = append(out, o)
		}
		return out
	}
	switch {
	case strings.HasPrefix(name, "artikel_"):
		var a Artikel
		if err := DecodeBytes(raw, &a); err != nil {
			return fail(err)
		}
		p, err := tr.Product(a)
		if err != nil {
			return fail(err)
		}
		return map[string]any{"product": p}
	case strings.HasPrefix(name, "auftrag_"):
		var a Auftrag
		if err := DecodeBytes(raw, &a); err != nil {
			return fail(err)
		}
		o, err := tr.Order(a)
		if err != nil {
			return fail(err)
		}
		replay, err := IsReplay(a)
		if err != nil {
			return fail(err)
		}
		return map[string]any{"order": o, "replay": replay}
	case strings.HasPrefix(name, "kundenauftraege_"):
		var k KundenAuftraege
		if err := DecodeBytes(raw, &k); err != nil {
			return fail(err)
		}
		return map[string]any{"orders": orders(k.Auftraege)}
	case strings.HasPrefix(name, "export_orders_"), strings.HasPrefix(name, "export_products_"):
		var e Export
		if err := DecodeBytes(raw, &e); err != nil {
			return fail(err)
		}
		typ := "auftraege"
		if strings.HasPrefix(name, "export_products_") {
			typ = "artikel"
		}
		page, err := Feed(e, typ)
		if err != nil {
			return fail(err)
		}
		if typ == "artikel" {
			return map[string]any{"next": page.Next, "more": page.More, "products": products(e.Artikel)}
		}
		return map[string]any{"next": page.Next, "more": page.More, "orders": orders(e.Auftraege)}
	case strings.HasPrefix(name, "katalog_export_"):
		var k KatalogExport
		if err := DecodeBytes(raw, &k); err != nil {
			return fail(err)
		}
		return map[string]any{"products": products(k.Artikel)}
	case strings.HasPrefix(name, "katalog_"):
		var k Katalog
		if err := DecodeBytes(raw, &k); err != nil {
			return fail(err)
		}
		return map[string]any{"products": products(k.Artikel)}
	case strings.HasPrefix(name, "kategorien"):
		var k Kategorien
		if err := DecodeBytes(raw, &k); err != nil {
			return fail(err)
		}
		out := []string{}
		for _, c := range k.Kat {
			name, err := CategoryFromLegacy(c.Code)
			if err != nil {
				return fail(err)
			}
			out = append(out, name)
		}
		return map[string]any{"categories": out}
	case strings.HasPrefix(name, "error_"):
		var a Artikel
		return fail(DecodeBytes(raw, &a))
	}
	t.Fatalf("no translation for golden input %s: name it after its root element", name)
	return nil
}

// TestGolden translates every legacy payload in testdata/golden/*.xml and
// compares the result with the .json beside it. Run with -update to
// rewrite the expectations after an intended change, then review the diff.
func TestGolden(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTranslator(berlin)
	if err != nil {
		t.Fatal(err)
	}
	inputs, err := filepath.Glob(filepath.Join("testdata", "golden", "*.xml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".xml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(translateGolden(t, tr, name, raw), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			want := strings.TrimSuffix(in, ".xml") + ".json"
			if *update {
				if err := os.WriteFile(want, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			exp, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (run go test ./acl -run TestGolden -update to create it)", err)
			}
			if !bytes.Equal(got, exp) {
				t.Errorf("%s changed; got:\n%s\nwant:\n%s", name, got, exp)
			}
		})
	}
}
