package acl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// addGoldenSeeds seeds a fuzz target with every golden input whose name
// starts with prefix, so the fuzzer starts from real legacy documents.
func addGoldenSeeds(f *testing.F, prefix string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "golden", prefix+"*.xml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(""))
	f.Add([]byte("<?xml version=\"1.0\"?><error code=\"E001\">x</error>"))
	f.Add([]byte(strings.Repeat("<a>", 1000)))
}

func fuzzTranslator(f *testing.F) Translator {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	tr, err := NewTranslator(loc)
	if err != nil {
		f.Fatal(err)
	}
	return tr
}

// checkDecodeError fails when a decoding error is not one of the documented
// kinds: callers branch on them.
func checkDecodeError(t *testing.T, err error) {
	var le *LegacyError
	if err != nil && !errors.As(err, &le) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
		t.Fatalf("undocumented decode error: %v", err)
	}
}

func FuzzDecodeArtikel(f *testing.F) {
	addGoldenSeeds(f, "artikel_")
	tr := fuzzTranslator(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var a Artikel
		err := DecodeBytes(b, &a)
		checkDecodeError(t, err)
		if err != nil {
			return
		}
		p, err := tr.Product(a)
		if err == nil && (p.Stock < 0 || p.Price.AmountMinor < 0 || p.Version < 1 || p.Available != (p.Stock > 0)) {
			t.Fatalf("translated product breaks the contract: %+v", p)
		}
	})
}

func FuzzDecodeAuftrag(f *testing.F) {
	addGoldenSeeds(f, "auftrag_")
	tr := fuzzTranslator(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var a Auftrag
		err := DecodeBytes(b, &a)
		checkDecodeError(t, err)
		if err != nil {
			return
		}
		o, err := tr.Order(a)
		if err != nil {
			return
		}
		var sum int64
		for _, l := range o.Lines {
			sum += l.LineTotal.AmountMinor
		}
		if sum != o.Total.AmountMinor || len(o.Lines) == 0 || o.ID == "" {
			t.Fatalf("translated order is inconsistent: %+v", o)
		}
	})
}

func FuzzDecodeExport(f *testing.F) {
	addGoldenSeeds(f, "export_")
	tr := fuzzTranslator(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Export
		err := DecodeBytes(b, &e)
		checkDecodeError(t, err)
		if err != nil {
			return
		}
		for _, typ := range []string{"auftraege", "artikel"} {
			if _, err := Feed(e, typ); err == nil {
				for _, a := range e.Auftraege {
					_, _ = tr.Order(a)
				}
				for _, a := range e.Artikel {
					_, _ = tr.Product(a)
				}
			}
		}
	})
}

func FuzzDecodeKatalog(f *testing.F) {
	addGoldenSeeds(f, "katalog")
	tr := fuzzTranslator(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var k KatalogExport
		err := DecodeBytes(b, &k)
		checkDecodeError(t, err)
		for _, a := range k.Artikel {
			_, _ = tr.Product(a)
		}
		var page Katalog
		checkDecodeError(t, DecodeBytes(b, &page))
		var cats Kategorien
		checkDecodeError(t, DecodeBytes(b, &cats))
		var ka KundenAuftraege
		checkDecodeError(t, DecodeBytes(b, &ka))
	})
}

// FuzzParseMoney checks that every amount the parser accepts renders back
// to the same text: the parser and the legacy's format agree exactly.
func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"0,99", "12,99", "1.234,50", "1.234.567,89", "0,00", "-1,00", "1234,50", "1.23,45", "9.223.372.036.854.775,807", " 3,10 ", "01,00", ",99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseMoney(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("undocumented error: %v", err)
			}
			return
		}
		if v < 0 {
			t.Fatalf("ParseMoney(%q) = %d < 0", s, v)
		}
		if got := FormatMoney(v); got != strings.TrimSpace(s) {
			t.Fatalf("ParseMoney(%q) = %d, which formats as %q", s, v, got)
		}
	})
}

// FuzzParseTime checks that every accepted date renders back to itself in
// the legacy's zone.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"14.03.2025 11:30", "30.03.2025 02:30", "26.10.2025 02:30", "31.02.2025 10:00", "1.1.2025 1:00", "", "99.99.9999 99:99"} {
		f.Add(s)
	}
	tr := fuzzTranslator(f)
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := tr.Time(s)
		if err != nil {
			return
		}
		if got := tr.FormatTime(ts); got != strings.TrimSpace(s) {
			t.Fatalf("Time(%q) = %v, which formats as %q", s, ts, got)
		}
		if ts.Location() != time.UTC {
			t.Fatalf("Time(%q) is not UTC", s)
		}
	})
}
