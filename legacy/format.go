package legacy

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// dateLayout is the legacy's only date format: local wall-clock time with
// no zone and minute precision. It is ambiguous for one hour each autumn
// (the DST fall-back hour occurs twice), which is why the change feeds
// prefer sequence numbers.
const dateLayout = "02.01.2006 15:04"

// formatMoney renders cents as the legacy's money string: thousands
// separated by '.', decimal comma, always two decimals ("1.234,50", "0,99").
func formatMoney(cents int64) string {
	var b strings.Builder
	if cents < 0 {
		b.WriteByte('-')
		cents = -cents
	}
	euros := strconv.FormatInt(cents/100, 10)
	for i := 0; i < len(euros); i++ {
		if i > 0 && (len(euros)-i)%3 == 0 {
			b.WriteByte('.')
		}
		b.WriteByte(euros[i])
	}
	b.WriteByte(',')
	c := cents % 100
	b.WriteByte(byte('0' + c/10))
	b.WriteByte(byte('0' + c%10))
	return b.String()
}

// formatDate renders a stored instant (Unix seconds) as local time in loc.
func formatDate(unix int64, loc *time.Location) string {
	return time.Unix(unix, 0).In(loc).Format(dateLayout)
}

// latin1 encodes s as ISO-8859-1, the charset the storefront pages declare.
// Runes outside Latin-1 become '?', as an old servlet container's encoder
// would write them.
func latin1(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0x100 && r != utf8.RuneError {
			out = append(out, byte(r))
		} else {
			out = append(out, '?')
		}
	}
	return out
}
