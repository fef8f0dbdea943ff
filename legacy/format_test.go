package legacy

import (
	"testing"
	"time"
)

func TestFormatMoney(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cents int64
		want  string
	}{
		{0, "0,00"}, {5, "0,05"}, {99, "0,99"}, {1299, "12,99"}, {100000, "1.000,00"},
		{123450, "1.234,50"}, {123456789, "1.234.567,89"}, {-150, "-1,50"},
	} {
		if got := formatMoney(tc.cents); got != tc.want {
			t.Errorf("formatMoney(%d) = %q, want %q", tc.cents, got, tc.want)
		}
	}
}

// The legacy's dates carry no offset: the autumn DST hour renders twice.
// This is why the feeds resume from sequence numbers, not timestamps.
func TestFormatDateIsLocalAndAmbiguous(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation(DefaultZone)
	if err != nil {
		t.Fatal(err)
	}
	summer := time.Date(2024, 10, 27, 0, 30, 0, 0, time.UTC) // 02:30 CEST
	winter := summer.Add(time.Hour)                          // 02:30 CET
	a, b := formatDate(summer.Unix(), berlin), formatDate(winter.Unix(), berlin)
	if a != "27.10.2024 02:30" || a != b {
		t.Errorf("got %q and %q, want both 27.10.2024 02:30", a, b)
	}
}

func TestLatin1(t *testing.T) {
	t.Parallel()
	if got := string(latin1("Größe €5")); got != "Gr\xf6\xdfe ?5" {
		t.Errorf("latin1 = %q", got)
	}
}
