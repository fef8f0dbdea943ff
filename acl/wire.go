package acl

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// MaxDocumentBytes caps every legacy document the ACL decodes. The largest
// legitimate one, the full catalog export, is about 1 KB per article; 8 MiB
// leaves room for 8000 articles while keeping a hostile or runaway response
// from exhausting memory.
const MaxDocumentBytes = 8 << 20

// ErrTooLarge is returned for a legacy document over MaxDocumentBytes.
var ErrTooLarge = errors.New("acl: legacy document exceeds the size limit")

// ErrMalformed wraps every failure to read a legacy document: bad XML, a
// truncated stream, an unexpected root element.
var ErrMalformed = errors.New("acl: malformed legacy document")

// LegacyError is the legacy's business error, sent as HTTP 200 with an
// <error code="E00x"> body. Decode returns it as an error.
type LegacyError struct {
	XMLName xml.Name `xml:"error"`
	// Code is the stable machine-readable code (E001-E007).
	Code string `xml:"code,attr"`
	// Message is for humans and may change between legacy releases.
	Message string `xml:",chardata"`
}

func (e *LegacyError) Error() string { return "legacy " + e.Code + ": " + strings.TrimSpace(e.Message) }

// The legacy's business error codes (docs/legacy.md).
const (
	CodeUnknownArticle    = "E001"
	CodeInsufficientStock = "E002"
	CodeIllegalTransition = "E003"
	CodeUnknownOrder      = "E004"
	CodeBadInput          = "E005"
	CodeUnknownCustomer   = "E006"
	CodeExtRefConflict    = "E007"
)

// Artikel mirrors <artikel>. The short form (catalog.do) has no ChgSeq,
// EAN, Beschr or Geaendert. All values are kept as the text the legacy sent;
// the translators parse them.
type Artikel struct {
	XMLName   xml.Name `xml:"artikel"`
	ArtNr     string   `xml:"art_nr,attr"`
	ChgSeq    string   `xml:"chg_seq,attr"`
	Bez       string   `xml:"bez"`
	Kat       string   `xml:"kat"`
	EAN       string   `xml:"ean"`
	Beschr    string   `xml:"beschr"`
	Preis     string   `xml:"preis"`
	Waehrung  string   `xml:"waehrung"`
	Bestand   string   `xml:"bestand"`
	Lieferbar string   `xml:"lieferbar"`
	Geaendert string   `xml:"geaendert"`
}

// Katalog mirrors <katalog>, one page of catalog.do.
type Katalog struct {
	XMLName  xml.Name  `xml:"katalog"`
	Seite    string    `xml:"seite,attr"`
	Seiten   string    `xml:"seiten,attr"`
	Treffer  string    `xml:"treffer,attr"`
	ProSeite string    `xml:"proSeite,attr"`
	Kat      string    `xml:"kat,attr"`
	Artikel  []Artikel `xml:"artikel"`
}

// KatalogExport mirrors <katalog_export>, the streamed export/catalog.xml.
type KatalogExport struct {
	XMLName xml.Name  `xml:"katalog_export"`
	Anzahl  string    `xml:"anzahl,attr"`
	Stand   string    `xml:"stand,attr"`
	Artikel []Artikel `xml:"artikel"`
}

// Kategorien mirrors <kategorien>.
type Kategorien struct {
	XMLName xml.Name `xml:"kategorien"`
	Kat     []struct {
		Code   string `xml:"code,attr"`
		Anzahl string `xml:"anzahl,attr"`
	} `xml:"kat"`
}

// Pos mirrors <pos>, one line of an order.
type Pos struct {
	Nr          string `xml:"nr,attr"`
	ArtNr       string `xml:"art_nr"`
	Bez         string `xml:"bez"`
	Menge       string `xml:"menge"`
	Einzelpreis string `xml:"einzelpreis"`
	Summe       string `xml:"summe"`
}

// Auftrag mirrors <auftrag>.
type Auftrag struct {
	XMLName xml.Name `xml:"auftrag"`
	OrdNo   string   `xml:"ord_no,attr"`
	ChgSeq  string   `xml:"chg_seq,attr"`
	// Wiederholt is "J" on an idempotent replay of placeOrder.do.
	Wiederholt string `xml:"wiederholt,attr"`
	CustNo     string `xml:"cust_no"`
	StsCd      string `xml:"sts_cd"`
	StsTxt     string `xml:"sts_txt"`
	ExtRef     string `xml:"ext_ref"`
	Angelegt   string `xml:"angelegt"`
	Geaendert  string `xml:"geaendert"`
	Summe      string `xml:"summe"`
	Waehrung   string `xml:"waehrung"`
	Positionen []Pos  `xml:"positionen>pos"`
}

// KundenAuftraege mirrors <kundenauftraege>.
type KundenAuftraege struct {
	XMLName   xml.Name  `xml:"kundenauftraege"`
	CustNo    string    `xml:"cust_no,attr"`
	Anzahl    string    `xml:"anzahl,attr"`
	Auftraege []Auftrag `xml:"auftrag"`
}

// Export mirrors <export>, one page of a change feed (export/orders.do
// with typ="auftraege", export/products.do with typ="artikel").
type Export struct {
	XMLName   xml.Name  `xml:"export"`
	Typ       string    `xml:"typ,attr"`
	Since     string    `xml:"since,attr"`
	Next      string    `xml:"next,attr"`
	Mehr      string    `xml:"mehr,attr"`
	Anzahl    string    `xml:"anzahl,attr"`
	Stand     string    `xml:"stand,attr"`
	Auftraege []Auftrag `xml:"auftrag"`
	Artikel   []Artikel `xml:"artikel"`
}

// Decode reads one legacy XML document from r into v, which must be a
// pointer to one of the mirror types above. It reads at most
// MaxDocumentBytes, accepts a UTF-8 byte order mark, and honours an
// ISO-8859-1 (or windows-1252) encoding declaration. An <error> document is
// returned as *LegacyError; anything unreadable wraps ErrMalformed.
func Decode(r io.Reader, v any) error {
	br := bufio.NewReader(io.LimitReader(r, MaxDocumentBytes+1))
	body, err := io.ReadAll(br)
	if err != nil {
		return fmt.Errorf("%w: reading: %w", ErrMalformed, err)
	}
	if len(body) > MaxDocumentBytes {
		return ErrTooLarge
	}
	return DecodeBytes(body, v)
}

// DecodeBytes is Decode for a document already in memory.
func DecodeBytes(body []byte, v any) error {
	if len(body) > MaxDocumentBytes {
		return ErrTooLarge
	}
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.CharsetReader = charsetReader
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: no root element", ErrMalformed)
			}
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue // declaration, comments, whitespace before the root
		}
		if start.Name.Local == "error" {
			var le LegacyError
			if err := dec.DecodeElement(&le, &start); err != nil {
				return fmt.Errorf("%w: error document: %w", ErrMalformed, err)
			}
			le.Code = strings.TrimSpace(le.Code)
			le.Message = strings.TrimSpace(le.Message)
			return &le
		}
		if err := dec.DecodeElement(v, &start); err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		// Nothing but whitespace and comments may follow the root: a
		// second element means the document is not what it claims.
		for {
			tok, err := dec.Token()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%w: after the root element: %w", ErrMalformed, err)
			}
			switch t := tok.(type) {
			case xml.StartElement:
				return fmt.Errorf("%w: second root element <%s>", ErrMalformed, t.Name.Local)
			case xml.CharData:
				if len(bytes.TrimSpace(t)) > 0 {
					return fmt.Errorf("%w: text after the root element", ErrMalformed)
				}
			}
		}
	}
}

// charsetReader converts the single-byte encodings an old servlet container
// may declare into UTF-8. windows-1252 is read as ISO-8859-1: the two differ
// only in 0x80-0x9F, which the legacy never emits in XML.
func charsetReader(label string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return input, nil
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "windows-1252", "cp1252":
		return &latin1Reader{r: bufio.NewReader(input)}, nil
	}
	return nil, fmt.Errorf("unsupported encoding %q", label)
}

// latin1Reader decodes ISO-8859-1 bytes into UTF-8: each byte is the rune
// of the same number.
type latin1Reader struct {
	r       *bufio.Reader
	pending []byte
}

func (l *latin1Reader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(l.pending) > 0 {
			c := copy(p[n:], l.pending)
			l.pending = l.pending[c:]
			n += c
			continue
		}
		b, err := l.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if b < utf8.RuneSelf {
			p[n] = b
			n++
			continue
		}
		var buf [2]byte
		w := utf8.EncodeRune(buf[:], rune(b))
		l.pending = append(l.pending[:0], buf[:w]...)
	}
	return n, nil
}
