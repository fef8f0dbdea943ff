package legacy

import (
	"encoding/xml"
	"strconv"
	"time"
)

// The XML shapes below are the legacy's wire format (docs/legacy.md). Field
// names are the monolith's own: German, abbreviated, mixing attributes and
// elements, with J/N booleans.

const currency = "EUR"

type xmlError struct {
	XMLName xml.Name `xml:"error"`
	Code    string   `xml:"code,attr"`
	Msg     string   `xml:",chardata"`
}

type xmlArtikel struct {
	XMLName   xml.Name `xml:"artikel"`
	ArtNr     string   `xml:"art_nr,attr"`
	ChgSeq    int64    `xml:"chg_seq,attr,omitempty"`
	Bez       string   `xml:"bez"`
	Kat       string   `xml:"kat"`
	EAN       string   `xml:"ean,omitempty"`
	Beschr    string   `xml:"beschr,omitempty"`
	Preis     string   `xml:"preis"`
	Waehrung  string   `xml:"waehrung"`
	Bestand   int      `xml:"bestand"`
	Lieferbar string   `xml:"lieferbar"`
	Geaendert string   `xml:"geaendert,omitempty"`
}

// articleDetail says how much of an article a response carries: the paged
// catalog sends the short form, detail and exports the full one.
type articleDetail int

const (
	short articleDetail = iota
	full
)

func toXMLArtikel(a article, d articleDetail, loc *time.Location) xmlArtikel {
	x := xmlArtikel{
		ArtNr:     a.ArtNr,
		Bez:       a.Bez,
		Kat:       a.Kat,
		Preis:     formatMoney(a.PreisCt),
		Waehrung:  currency,
		Bestand:   a.Bestand,
		Lieferbar: yesNo(a.Bestand > 0),
	}
	if d == full {
		x.ChgSeq = a.ChgSeq
		x.EAN = a.EAN
		x.Beschr = a.Beschr
		x.Geaendert = formatDate(a.Geaendert, loc)
	}
	return x
}

type xmlPos struct {
	Nr          int    `xml:"nr,attr"`
	ArtNr       string `xml:"art_nr"`
	Bez         string `xml:"bez"`
	Menge       int    `xml:"menge"`
	Einzelpreis string `xml:"einzelpreis"`
	Summe       string `xml:"summe"`
}

type xmlAuftrag struct {
	XMLName    xml.Name `xml:"auftrag"`
	OrdNo      string   `xml:"ord_no,attr"`
	ChgSeq     int64    `xml:"chg_seq,attr"`
	Wiederholt string   `xml:"wiederholt,attr,omitempty"`
	CustNo     string   `xml:"cust_no"`
	StsCd      int      `xml:"sts_cd"`
	StsTxt     string   `xml:"sts_txt"`
	ExtRef     string   `xml:"ext_ref,omitempty"`
	Angelegt   string   `xml:"angelegt"`
	Geaendert  string   `xml:"geaendert"`
	Summe      string   `xml:"summe"`
	Waehrung   string   `xml:"waehrung"`
	Positionen []xmlPos `xml:"positionen>pos"`
}

func toXMLAuftrag(o order, loc *time.Location) xmlAuftrag {
	x := xmlAuftrag{
		OrdNo:     strconv.FormatInt(o.OrdNo, 10),
		ChgSeq:    o.ChgSeq,
		CustNo:    o.CustNo,
		StsCd:     o.Sts,
		StsTxt:    statusText[o.Sts],
		ExtRef:    o.ExtRef,
		Angelegt:  formatDate(o.Angelegt, loc),
		Geaendert: formatDate(o.Geaendert, loc),
		Summe:     formatMoney(o.SummeCt),
		Waehrung:  currency,
	}
	for _, l := range o.Lines {
		x.Positionen = append(x.Positionen, xmlPos{
			Nr:          l.PosNr,
			ArtNr:       l.ArtNr,
			Bez:         l.Bez,
			Menge:       l.Menge,
			Einzelpreis: formatMoney(l.PreisCt),
			Summe:       formatMoney(l.PreisCt * int64(l.Menge)),
		})
	}
	return x
}

type xmlKundenAuftraege struct {
	XMLName   xml.Name     `xml:"kundenauftraege"`
	CustNo    string       `xml:"cust_no,attr"`
	Anzahl    int          `xml:"anzahl,attr"`
	Auftraege []xmlAuftrag `xml:"auftrag"`
}

type xmlKategorien struct {
	XMLName xml.Name `xml:"kategorien"`
	Kat     []xmlKat `xml:"kat"`
}

type xmlKat struct {
	Code   string `xml:"code,attr"`
	Anzahl int    `xml:"anzahl,attr"`
}

func yesNo(b bool) string {
	if b {
		return "J"
	}
	return "N"
}
