package acl

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ficus-gw/ficus/contracts/api"
)

// ErrUnknownValue wraps every legacy value the translators do not know: a
// status code, category, currency, boolean letter or error code outside the
// documented set. The ACL never maps such a value to a default.
var ErrUnknownValue = errors.New("acl: unknown legacy value")

// ErrInvalidValue wraps a legacy value of a known field that does not parse
// or breaks a documented invariant (money format, a line total that is not
// price × quantity, a date that cannot exist).
var ErrInvalidValue = errors.New("acl: invalid legacy value")

// DefaultZone is the legacy's zone unless configured otherwise.
const DefaultZone = "Europe/Berlin"

// LegacyDateLayout is the legacy's only date format: local wall-clock time,
// minute precision, no offset.
const LegacyDateLayout = "02.01.2006 15:04"

// Status is an order status in the new contract (contracts/api).
type Status = api.Status

// The contract's order statuses.
const (
	StatusPlaced    = api.StatusPlaced
	StatusPaid      = api.StatusPaid
	StatusShipped   = api.StatusShipped
	StatusCancelled = api.StatusCancelled
)

// legacyStatus is the status table. 1 (NEU, entered by phone, nothing
// reserved) and 3 (RESERVIERT) are both an order awaiting payment: the
// contract has one status for that.
var legacyStatus = map[string]struct {
	status Status
	text   string
}{
	"1":  {StatusPlaced, "NEU"},
	"3":  {StatusPlaced, "RESERVIERT"},
	"7":  {StatusPaid, "BEZAHLT"},
	"9":  {StatusShipped, "VERSANDT"},
	"99": {StatusCancelled, "STORNIERT"},
}

// StatusFromLegacy maps a legacy sts_cd to the contract status. txt, the
// sts_txt sent beside it, is checked when not empty: a code whose text
// disagrees means the two systems no longer share a status table.
func StatusFromLegacy(code, txt string) (Status, error) {
	e, ok := legacyStatus[strings.TrimSpace(code)]
	if !ok {
		return "", fmt.Errorf("%w: order status code %q", ErrUnknownValue, code)
	}
	if t := strings.TrimSpace(txt); t != "" && t != e.text {
		return "", fmt.Errorf("%w: status code %s comes with text %q, want %q", ErrInvalidValue, code, t, e.text)
	}
	return e.status, nil
}

// categories maps the legacy's category codes to the contract's category
// names (lower-case, English, as the catalog service stores them).
var categories = map[string]string{
	"WERKZEUG":   "tools",
	"GARTEN":     "garden",
	"HAUSHALT":   "household",
	"ELEKTRO":    "electronics",
	"BUERO":      "office",
	"SPORT":      "sports",
	"SPIELWAREN": "toys",
}

// CategoryFromLegacy maps a legacy category code (case-insensitive) to the
// contract's category name.
func CategoryFromLegacy(kat string) (string, error) {
	c, ok := categories[strings.ToUpper(strings.TrimSpace(kat))]
	if !ok {
		return "", fmt.Errorf("%w: category %q", ErrUnknownValue, kat)
	}
	return c, nil
}

// CategoryToLegacy maps a contract category name to the legacy code; false
// when the legacy has no such category.
func CategoryToLegacy(category string) (string, bool) {
	for k, v := range categories {
		if v == category {
			return k, true
		}
	}
	return "", false
}

// ParseMoney parses the legacy's money text (decimal comma, '.' between
// thousands, exactly two decimals: "0,99", "1.234,50") into minor units.
// Negative amounts, missing or misplaced separators and overflow are errors.
func ParseMoney(s string) (int64, error) {
	t := strings.TrimSpace(s)
	bad := func(why string) (int64, error) {
		return 0, fmt.Errorf("%w: money %q: %s", ErrInvalidValue, s, why)
	}
	whole, frac, ok := strings.Cut(t, ",")
	if !ok || len(frac) != 2 || !allDigits(frac) {
		return bad("want digits, a decimal comma and two decimals")
	}
	groups := strings.Split(whole, ".")
	if len(groups[0]) < 1 || len(groups[0]) > 3 {
		return bad("bad thousands grouping")
	}
	var v int64
	for i, g := range groups {
		if !allDigits(g) || (i > 0 && len(g) != 3) {
			return bad("bad thousands grouping")
		}
		if i == 0 && g[0] == '0' && (len(g) > 1 || len(groups) > 1) {
			return bad("leading zero")
		}
		for _, c := range []byte(g) {
			if v > (math.MaxInt64-9)/10 {
				return bad("too large")
			}
			v = v*10 + int64(c-'0')
		}
	}
	if v > (math.MaxInt64-99)/100 {
		return bad("too large")
	}
	return v*100 + int64(frac[0]-'0')*10 + int64(frac[1]-'0'), nil
}

// FormatMoney renders minor units in the legacy's money format.
func FormatMoney(minor int64) string {
	var b strings.Builder
	if minor < 0 {
		b.WriteByte('-')
		minor = -minor
	}
	euros := strconv.FormatInt(minor/100, 10)
	for i := 0; i < len(euros); i++ {
		if i > 0 && (len(euros)-i)%3 == 0 {
			b.WriteByte('.')
		}
		b.WriteByte(euros[i])
	}
	fmt.Fprintf(&b, ",%02d", minor%100)
	return b.String()
}

func parseCurrency(s string) (string, error) {
	c := strings.TrimSpace(s)
	if len(c) != 3 || !isUpper(c) {
		return "", fmt.Errorf("%w: currency %q", ErrUnknownValue, s)
	}
	return c, nil
}

func isUpper(s string) bool {
	for _, c := range []byte(s) {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseCount parses a whole number in [lo, hi].
func parseCount(s, field string, lo, hi int64) (int64, error) {
	t := strings.TrimSpace(s)
	if !allDigits(t) {
		return 0, fmt.Errorf("%w: %s %q is not a whole number", ErrInvalidValue, field, s)
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: %s %q is out of range %d..%d", ErrInvalidValue, field, s, lo, hi)
	}
	return n, nil
}

// ParseYesNo parses the legacy's J/N booleans.
func ParseYesNo(s string) (bool, error) {
	switch strings.TrimSpace(s) {
	case "J":
		return true, nil
	case "N":
		return false, nil
	}
	return false, fmt.Errorf("%w: boolean %q (want J or N)", ErrUnknownValue, s)
}

// Translator turns legacy documents into the new contract. Its only state
// is the legacy's zone, which is configuration: the legacy writes local
// wall-clock times without an offset. It is safe for concurrent use.
type Translator struct {
	loc *time.Location
}

// NewTranslator returns a Translator for a legacy whose local times are in
// loc; nil means Europe/Berlin.
func NewTranslator(loc *time.Location) (Translator, error) {
	if loc == nil {
		var err error
		if loc, err = time.LoadLocation(DefaultZone); err != nil {
			return Translator{}, fmt.Errorf("acl: loading zone %s: %w", DefaultZone, err)
		}
	}
	return Translator{loc: loc}, nil
}

// Location is the legacy's zone.
func (t Translator) Location() *time.Location { return t.loc }

// Time parses a legacy local date ("14.03.2025 11:30") into UTC. A
// wall-clock time that the zone skips (spring DST gap) cannot have been
// written by the legacy and is an error; one that occurs twice (the autumn
// hour) is read as the earlier instant, so the result is deterministic.
func (t Translator) Time(s string) (time.Time, error) {
	v := strings.TrimSpace(s)
	local, err := time.ParseInLocation(LegacyDateLayout, v, t.loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: date %q (want dd.MM.yyyy HH:mm)", ErrInvalidValue, s)
	}
	if local.In(t.loc).Format(LegacyDateLayout) != v {
		return time.Time{}, fmt.Errorf("%w: date %q does not exist in %s (DST gap)", ErrInvalidValue, s, t.loc)
	}
	if earlier := local.Add(-time.Hour); earlier.In(t.loc).Format(LegacyDateLayout) == v {
		local = earlier
	}
	return local.UTC(), nil
}

// FormatTime renders an instant as a legacy local date (minute precision),
// e.g. for the since= parameter of a change feed.
func (t Translator) FormatTime(ts time.Time) string {
	return ts.In(t.loc).Format(LegacyDateLayout)
}

// The translators produce the contract's own types (contracts/api), the
// ones the new services serve, so the ACL backend's answers are
// byte-compatible with theirs. In a translated Product and Order, Version
// is the legacy's chg_seq of the last change: it only grows, as the
// contract's version must, but not by one.
type (
	Money     = api.Money
	Product   = api.Product
	OrderLine = api.OrderLine
	Order     = api.Order
)

// maxSeq bounds chg_seq and other identifiers the legacy sends; anything
// larger is corrupt.
const maxSeq = 1 << 53

// Product translates a full-form <artikel> (productDetail.do, the exports).
// The short form of catalog.do lacks the change date and sequence the
// contract requires, so it is refused rather than given invented ones.
func (t Translator) Product(a Artikel) (Product, error) {
	sku := strings.TrimSpace(a.ArtNr)
	fail := func(err error) (Product, error) { return Product{}, fmt.Errorf("article %q: %w", sku, err) }
	if !ValidArtNr(sku) {
		return fail(fmt.Errorf("%w: art_nr %q (want ART-<digits>)", ErrInvalidValue, a.ArtNr))
	}
	if strings.TrimSpace(a.ChgSeq) == "" || strings.TrimSpace(a.Geaendert) == "" {
		return fail(fmt.Errorf("%w: short article form has no chg_seq/geaendert; read productDetail.do or an export", ErrInvalidValue))
	}
	p := Product{SKU: sku, Name: strings.TrimSpace(a.Bez), Description: strings.TrimSpace(a.Beschr)}
	if p.Name == "" {
		return fail(fmt.Errorf("%w: empty bez", ErrInvalidValue))
	}
	var err error
	if p.Category, err = CategoryFromLegacy(a.Kat); err != nil {
		return fail(err)
	}
	if p.Price.AmountMinor, err = ParseMoney(a.Preis); err != nil {
		return fail(err)
	}
	if p.Price.Currency, err = parseCurrency(a.Waehrung); err != nil {
		return fail(err)
	}
	if p.Stock, err = parseCount(a.Bestand, "bestand", 0, 1_000_000_000); err != nil {
		return fail(err)
	}
	p.Available = p.Stock > 0
	lieferbar, err := ParseYesNo(a.Lieferbar)
	if err != nil {
		return fail(err)
	}
	if lieferbar != p.Available {
		return fail(fmt.Errorf("%w: lieferbar=%s but bestand=%d", ErrInvalidValue, strings.TrimSpace(a.Lieferbar), p.Stock))
	}
	if p.UpdatedAt, err = t.Time(a.Geaendert); err != nil {
		return fail(err)
	}
	if p.Version, err = parseCount(a.ChgSeq, "chg_seq", 1, maxSeq); err != nil {
		return fail(err)
	}
	return p, nil
}

// ValidArtNr reports whether s is a legacy article number as the legacy
// writes it: "ART-" and digits, upper case.
func ValidArtNr(s string) bool {
	d, ok := strings.CutPrefix(s, "ART-")
	return ok && len(s) <= 32 && allDigits(d)
}

// Order translates an <auftrag>. Totals are checked, not trusted: a line
// whose summe is not einzelpreis × menge, or an order whose summe is not the
// sum of its lines, is an error.
func (t Translator) Order(a Auftrag) (Order, error) {
	no := strings.TrimSpace(a.OrdNo)
	fail := func(err error) (Order, error) { return Order{}, fmt.Errorf("order %q: %w", no, err) }
	if _, err := parseCount(no, "ord_no", 1, maxSeq); err != nil {
		return fail(err)
	}
	o := Order{LegacyOrderNo: no, CustomerID: strings.TrimSpace(a.CustNo)}
	if !allDigits(o.CustomerID) || len(o.CustomerID) > 32 {
		return fail(fmt.Errorf("%w: cust_no %q", ErrInvalidValue, a.CustNo))
	}
	o.ID = OrderID(no, a.ExtRef)
	var err error
	if o.Status, err = StatusFromLegacy(a.StsCd, a.StsTxt); err != nil {
		return fail(err)
	}
	if o.Currency, err = parseCurrency(a.Waehrung); err != nil {
		return fail(err)
	}
	if o.CreatedAt, err = t.Time(a.Angelegt); err != nil {
		return fail(err)
	}
	if o.UpdatedAt, err = t.Time(a.Geaendert); err != nil {
		return fail(err)
	}
	if o.Version, err = parseCount(a.ChgSeq, "chg_seq", 1, maxSeq); err != nil {
		return fail(err)
	}
	if len(a.Positionen) == 0 {
		return fail(fmt.Errorf("%w: no positions", ErrInvalidValue))
	}
	var sum int64
	o.Lines = make([]OrderLine, 0, len(a.Positionen))
	for i, p := range a.Positionen {
		l, err := t.line(p, o.Currency)
		if err != nil {
			return fail(fmt.Errorf("pos %d: %w", i+1, err))
		}
		if sum > math.MaxInt64-l.LineTotal.AmountMinor {
			return fail(fmt.Errorf("%w: total overflows", ErrInvalidValue))
		}
		sum += l.LineTotal.AmountMinor
		o.Lines = append(o.Lines, l)
	}
	total, err := ParseMoney(a.Summe)
	if err != nil {
		return fail(err)
	}
	if total != sum {
		return fail(fmt.Errorf("%w: summe %s is not the sum of the lines (%s)", ErrInvalidValue, strings.TrimSpace(a.Summe), FormatMoney(sum)))
	}
	o.Total = Money{AmountMinor: total, Currency: o.Currency}
	return o, nil
}

func (t Translator) line(p Pos, currency string) (OrderLine, error) {
	l := OrderLine{Sku: strings.TrimSpace(p.ArtNr), Name: strings.TrimSpace(p.Bez)}
	if !ValidArtNr(l.Sku) {
		return l, fmt.Errorf("%w: art_nr %q", ErrInvalidValue, p.ArtNr)
	}
	qty, err := parseCount(p.Menge, "menge", 1, 1_000_000)
	if err != nil {
		return l, err
	}
	l.Quantity = int(qty)
	unit, err := ParseMoney(p.Einzelpreis)
	if err != nil {
		return l, err
	}
	lineSum, err := ParseMoney(p.Summe)
	if err != nil {
		return l, err
	}
	if unit > math.MaxInt64/qty || unit*qty != lineSum {
		return l, fmt.Errorf("%w: summe %s is not %d × %s", ErrInvalidValue, strings.TrimSpace(p.Summe), qty, strings.TrimSpace(p.Einzelpreis))
	}
	l.UnitPrice = Money{AmountMinor: unit, Currency: currency}
	l.LineTotal = Money{AmountMinor: lineSum, Currency: currency}
	return l, nil
}

// IsReplay reports whether a placeOrder.do answer is an idempotent replay
// (wiederholt="J") of an order placed earlier with the same ext_ref.
func IsReplay(a Auftrag) (bool, error) {
	if strings.TrimSpace(a.Wiederholt) == "" {
		return false, nil
	}
	return ParseYesNo(a.Wiederholt)
}

// legacyOrderNamespace must stay equal to what newsvc/order's LegacyOrderID
// hashes, so both sides give a legacy order the same orderId (a test holds
// them together).
const legacyOrderNamespace = "urn:ficus:legacy-order:"

// LegacyOrderID is the contract orderId of the legacy order numbered no: a
// name-based UUID (RFC 9562 version 5), the same that the order service
// gives the order when the sync copies it.
func LegacyOrderID(no string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(legacyOrderNamespace+no)).String()
}

// IsWriteBackRef reports whether a legacy ext_ref is an order id of the new
// services (a canonical lower-case UUID): the dual-run sync writes orders
// placed on the new side back to the legacy with ext_ref = their orderId.
// Idempotency keys of the ACL backend never take that shape (see
// ExtRefForKey), so the two cannot be confused.
func IsWriteBackRef(extRef string) bool {
	e := strings.TrimSpace(extRef)
	if len(e) != 36 {
		return false
	}
	u, err := uuid.Parse(e)
	return err == nil && u.String() == e
}

// OrderID is the contract orderId of a legacy order: the new side's id when
// the order was written back from there, else LegacyOrderID(no).
func OrderID(no, extRef string) string {
	if IsWriteBackRef(extRef) {
		return strings.TrimSpace(extRef)
	}
	return LegacyOrderID(no)
}

// ExtRefForKey derives the legacy ext_ref from a client's Idempotency-Key:
// api.IntentRef, the one definition both sides share. Keys may be up to
// 128 characters with spaces, ext_ref at most 64 without, so the key is
// hashed: a retry with the same key reaches the legacy with the same ext_ref,
// and the legacy replays the order instead of booking it twice.
func ExtRefForKey(key string) string { return api.IntentRef(key) }

// FeedPage is the position information of a change-feed page.
type FeedPage struct {
	// Next is the sequence to resume from (since=Next).
	Next int64
	// More is true when more entries wait behind this page.
	More bool
}

// Feed checks an <export> page of type typ ("auftraege" or "artikel") and
// returns where to resume. The entry count must match anzahl: a mismatch
// means a truncated or mangled page.
func Feed(e Export, typ string) (FeedPage, error) {
	if strings.TrimSpace(e.Typ) != typ {
		return FeedPage{}, fmt.Errorf("%w: export typ %q, want %q", ErrUnknownValue, e.Typ, typ)
	}
	next, err := parseCount(e.Next, "next", 0, maxSeq)
	if err != nil {
		return FeedPage{}, err
	}
	more, err := ParseYesNo(e.Mehr)
	if err != nil {
		return FeedPage{}, err
	}
	n, err := parseCount(e.Anzahl, "anzahl", 0, maxSeq)
	if err != nil {
		return FeedPage{}, err
	}
	if got := len(e.Auftraege) + len(e.Artikel); int64(got) != n {
		return FeedPage{}, fmt.Errorf("%w: export says anzahl=%d but holds %d entries", ErrInvalidValue, n, got)
	}
	return FeedPage{Next: next, More: more}, nil
}
