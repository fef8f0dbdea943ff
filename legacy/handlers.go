package legacy

import (
	"context"
	"database/sql"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Paging limits of catalog.do and the export feeds.
const (
	defaultPageSize = 20
	maxPageSize     = 5000
	defaultFeedMax  = 100
	maxFeedMax      = 1000
	flushEvery      = 25 // articles between flushes of a streamed document
)

// form parses the query and (for POST) the url-encoded body into r.Form,
// as a servlet's getParameter sees them. Bodies are capped; an oversized or
// undecodable body is a protocol error (HTTP 400/413), not a business one.
func form(w http.ResponseWriter, r *http.Request) error {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &httpError{status: http.StatusRequestEntityTooLarge, msg: "form larger than " + strconv.Itoa(maxFormBytes) + " bytes"}
		}
		return &httpError{status: http.StatusBadRequest, msg: "malformed form: " + err.Error()}
	}
	return nil
}

// intParam reads an optional whole-number parameter within [lo, hi].
func intParam(r *http.Request, name string, def, lo, hi int64) (int64, error) {
	v := strings.TrimSpace(r.Form.Get(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, bizErrorf(errBadInput, "%s must be a whole number from %d to %d", name, lo, hi)
	}
	return n, nil
}

func requiredParam(r *http.Request, name string) (string, error) {
	v := strings.TrimSpace(r.Form.Get(name))
	if v == "" {
		return "", bizErrorf(errBadInput, "%s is required", name)
	}
	return v, nil
}

func ordNoParam(r *http.Request) (int64, error) {
	v, err := requiredParam(r, "ord_no")
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, bizErrorf(errBadInput, "ord_no must be a positive whole number")
	}
	return n, nil
}

// readTx runs fn in a read-only transaction, so every query of one response
// sees the same snapshot (counts match rows, feed tokens match content).
func (s *Shop) readTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.R.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("beginning read: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	return fn(tx)
}

// stream writes one XML document progressively: the root start tag, then
// items, flushing every flushEvery items so a large catalog reaches the
// client (and the gateway) while it is still being read.
type stream struct {
	w   http.ResponseWriter
	enc *xml.Encoder
	rc  *http.ResponseController
	n   int
}

func startStream(w http.ResponseWriter, root xml.StartElement) (*stream, error) {
	setXMLHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return nil, err
	}
	st := &stream{w: w, enc: xml.NewEncoder(w), rc: http.NewResponseController(w)}
	st.enc.Indent("", " ")
	return st, st.enc.EncodeToken(root)
}

func (st *stream) item(v any) error {
	if err := st.enc.Encode(v); err != nil {
		return err
	}
	st.n++
	if st.n%flushEvery == 0 {
		if err := st.enc.Flush(); err != nil {
			return err
		}
		if err := st.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
	}
	return nil
}

func (st *stream) end(root xml.StartElement) error {
	if err := st.enc.EncodeToken(root.End()); err != nil {
		return err
	}
	if err := st.enc.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(st.w, "\n")
	return err
}

func attrs(kv ...string) []xml.Attr {
	out := make([]xml.Attr, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, xml.Attr{Name: xml.Name{Local: kv[i]}, Value: kv[i+1]})
	}
	return out
}

// catalog serves GET catalog.do?page=N[&size=M][&cat=KAT]: one page of the
// short article form, streamed, so a very large size still works.
func (s *Shop) catalog(w http.ResponseWriter, r *http.Request) error {
	if err := form(w, r); err != nil {
		return err
	}
	page, err := intParam(r, "page", 1, 1, 1<<31-1)
	if err != nil {
		return err
	}
	size, err := intParam(r, "size", defaultPageSize, 1, maxPageSize)
	if err != nil {
		return err
	}
	f := articleFilter{kat: strings.ToUpper(strings.TrimSpace(r.Form.Get("cat")))}
	return s.readTx(r.Context(), func(tx *sql.Tx) error {
		total, err := countArticles(r.Context(), tx, f)
		if err != nil {
			return err
		}
		pages := (int64(total) + size - 1) / size
		root := xml.StartElement{Name: xml.Name{Local: "katalog"}, Attr: attrs(
			"seite", strconv.FormatInt(page, 10), "seiten", strconv.FormatInt(pages, 10),
			"treffer", strconv.Itoa(total), "proSeite", strconv.FormatInt(size, 10))}
		if f.kat != "" {
			root.Attr = append(root.Attr, attrs("kat", f.kat)...)
		}
		st, err := startStream(w, root)
		if err != nil {
			return err
		}
		if page <= pages {
			err = eachArticle(r.Context(), tx, f, int((page-1)*size), int(size), func(a article) error {
				return st.item(toXMLArtikel(a, short, s.cfg.Location))
			})
			if err != nil {
				return err
			}
		}
		return st.end(root)
	})
}

func (s *Shop) categoryList(w http.ResponseWriter, r *http.Request) error {
	counts, names, err := categories(r.Context(), s.db.R)
	if err != nil {
		return err
	}
	out := xmlKategorien{}
	for _, n := range names {
		out.Kat = append(out.Kat, xmlKat{Code: n, Anzahl: counts[n]})
	}
	writeXML(w, out)
	return nil
}

func (s *Shop) productDetail(w http.ResponseWriter, r *http.Request) error {
	if err := form(w, r); err != nil {
		return err
	}
	artNr, err := requiredParam(r, "art_nr")
	if err != nil {
		return err
	}
	a, err := getArticle(r.Context(), s.db.R, strings.ToUpper(artNr))
	if err != nil {
		return err
	}
	writeXML(w, toXMLArtikel(a, full, s.cfg.Location))
	return nil
}

var productPageTmpl = template.Must(template.New("product").Parse(`<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">
<html>
<head>
<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">
<title>{{.Bez}} - Kaufhaus Online-Shop</title>
</head>
<body bgcolor="#FFFFFF">
<table width="760" border="0" cellpadding="4">
<tr><td colspan="2"><font face="Arial" size="5"><b>{{.Bez}}</b></font></td></tr>
<tr><td>Artikel-Nr.:</td><td id="art_nr">{{.ArtNr}}</td></tr>
<tr><td>Kategorie:</td><td>{{.Kat}}</td></tr>
<tr><td>EAN:</td><td>{{.EAN}}</td></tr>
<tr><td>Preis:</td><td id="preis"><b>{{.Preis}} &euro;</b> inkl. MwSt.</td></tr>
<tr><td>Verf&uuml;gbarkeit:</td><td id="lieferbar">{{if .Lieferbar}}sofort lieferbar ({{.Bestand}} St&uuml;ck){{else}}zur Zeit nicht lieferbar{{end}}</td></tr>
<tr><td colspan="2"><p>{{.Beschr}}</p></td></tr>
</table>
<form method="post" action="placeOrder.do">
<input type="hidden" name="art_nr" value="{{.ArtNr}}">
Kunden-Nr.: <input type="text" name="cust_no" size="8"> Menge: <input type="text" name="qty" value="1" size="3">
<input type="submit" value="In den Warenkorb"{{if not .Lieferbar}} disabled{{end}}>
</form>
</body>
</html>
`))

// productPage serves the storefront's HTML page for one article, encoded
// as ISO-8859-1 the way the old JSP did.
func (s *Shop) productPage(w http.ResponseWriter, r *http.Request) error {
	if err := form(w, r); err != nil {
		return err
	}
	artNr := strings.ToUpper(strings.TrimSpace(r.Form.Get("art_nr")))
	a, err := getArticle(r.Context(), s.db.R, artNr)
	var be *bizError
	if errors.As(err, &be) || artNr == "" {
		return &httpError{status: http.StatusNotFound, msg: "Artikel " + artNr + " nicht gefunden"}
	}
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := productPageTmpl.Execute(&b, struct {
		article
		Preis     string
		Lieferbar bool
	}{a, formatMoney(a.PreisCt), a.Bestand > 0}); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=ISO-8859-1")
	_, _ = w.Write(latin1(b.String()))
	return nil
}

func (s *Shop) placeOrderHandler(w http.ResponseWriter, r *http.Request) error {
	if err := form(w, r); err != nil {
		return err
	}
	req, err := parseOrderForm(r.Form)
	if err != nil {
		return err
	}
	o, replay, err := s.placeOrder(r.Context(), req)
	if err != nil {
		return err
	}
	x := toXMLAuftrag(o, s.cfg.Location)
	if replay {
		x.Wiederholt = "J"
	}
	s.logger(r.Context()).InfoContext(r.Context(), "order placed", "ord_no", o.OrdNo, "cust_no", o.CustNo, "replay", replay, "chg_seq", o.ChgSeq)
	writeXML(w, x)
	return nil
}

func (s *Shop) orderStatus(w http.ResponseWriter, r *http.Request) error {
	if err := form(w, r); err != nil {
		return err
	}
	ordNo, err := ordNoParam(r)
	if err != nil {
		return err
	}
	o, err := getOrder(r.Context(), s.db.R, ordNo)
	if err != nil {
		return err
	}
	writeXML(w, toXMLAuftrag(o, s.cfg.Location))
	return nil
}

// statusHandler serves payOrder.do, shipOrder.do and cancelOrder.do.
func (s *Shop) statusHandler(t transition) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := form(w, r); err != nil {
			return err
		}
		ordNo, err := ordNoParam(r)
		if err != nil {
			return err
		}
		o, err := s.changeStatus(r.Context(), ordNo, t)
		if err != nil {
			return err
		}
		s.logger(r.Context()).InfoContext(r.Context(), "order status changed", "ord_no", o.OrdNo, "action", t.name, "sts_cd", o.Sts, "chg_seq", o.ChgSeq)
		writeXML(w, toXMLAuftrag(o, s.cfg.Location))
		return nil
	}
}

func (s *Shop) customerOrders(w http.ResponseWriter, r *http.Request) error {
	if err := form(w, r); err != nil {
		return err
	}
	custNo, err := requiredParam(r, "cust_no")
	if err != nil {
		return err
	}
	return s.readTx(r.Context(), func(tx *sql.Tx) error {
		ok, err := customerExists(r.Context(), tx, custNo)
		if err != nil {
			return err
		}
		if !ok {
			return bizErrorf(errUnknownCustomer, "unknown customer %s", custNo)
		}
		os, err := queryOrders(r.Context(), tx, `cust_no = ?`, `ord_no`, -1, custNo)
		if err != nil {
			return err
		}
		out := xmlKundenAuftraege{CustNo: custNo, Anzahl: len(os)}
		for _, o := range os {
			out.Auftraege = append(out.Auftraege, toXMLAuftrag(o, s.cfg.Location))
		}
		writeXML(w, out)
		return nil
	})
}

// parseFeedQuery reads since= (a change sequence number, or a local
// timestamp dd.MM.yyyy HH:mm for a first sync) and max=.
func (s *Shop) parseFeedQuery(w http.ResponseWriter, r *http.Request) (feedQuery, error) {
	var f feedQuery
	if err := form(w, r); err != nil {
		return f, err
	}
	max, err := intParam(r, "max", defaultFeedMax, 1, maxFeedMax)
	if err != nil {
		return f, err
	}
	f.max = int(max)
	since := strings.TrimSpace(r.Form.Get("since"))
	if since == "" {
		return f, nil
	}
	if n, err := strconv.ParseInt(since, 10, 64); err == nil && n >= 0 {
		f.seq = n
		return f, nil
	}
	t, err := time.ParseInLocation(dateLayout, since, s.cfg.Location)
	if err != nil {
		return f, bizErrorf(errBadInput, "since must be a change sequence number or a date dd.MM.yyyy HH:mm")
	}
	f.at, f.byTime = t.Unix(), true
	return f, nil
}

// feedRoot is the <export> start tag: what was asked (since), where to
// resume (next: the chg_seq of the last entry, or since/the current head
// when there is none), whether more is waiting, and the legacy's clock.
func (s *Shop) feedRoot(ctx context.Context, tx *sql.Tx, typ string, f feedQuery, since string, count int, lastSeq int64, more bool) (xml.StartElement, error) {
	next := lastSeq
	if count == 0 {
		next = f.seq
		if f.byTime {
			head, err := headSeq(ctx, tx)
			if err != nil {
				return xml.StartElement{}, err
			}
			next = head
		}
	}
	return xml.StartElement{Name: xml.Name{Local: "export"}, Attr: attrs(
		"typ", typ, "since", since, "next", strconv.FormatInt(next, 10), "mehr", yesNo(more),
		"anzahl", strconv.Itoa(count), "stand", s.now().In(s.cfg.Location).Format(dateLayout))}, nil
}

func (s *Shop) exportOrders(w http.ResponseWriter, r *http.Request) error {
	f, err := s.parseFeedQuery(w, r)
	if err != nil {
		return err
	}
	return s.readTx(r.Context(), func(tx *sql.Tx) error {
		q := f
		q.max++
		os, err := ordersSince(r.Context(), tx, q)
		if err != nil {
			return err
		}
		return writeFeed(s, w, r, tx, "auftraege", f, os,
			func(o order) int64 { return o.ChgSeq },
			func(o order) any { return toXMLAuftrag(o, s.cfg.Location) })
	})
}

func (s *Shop) exportProducts(w http.ResponseWriter, r *http.Request) error {
	f, err := s.parseFeedQuery(w, r)
	if err != nil {
		return err
	}
	return s.readTx(r.Context(), func(tx *sql.Tx) error {
		var as []article
		if err := eachArticle(r.Context(), tx, articleFilter{fq: &f}, 0, f.max+1, func(a article) error {
			as = append(as, a)
			return nil
		}); err != nil {
			return err
		}
		return writeFeed(s, w, r, tx, "artikel", f, as,
			func(a article) int64 { return a.ChgSeq },
			func(a article) any { return toXMLArtikel(a, full, s.cfg.Location) })
	})
}

// writeFeed streams one page of a change feed: items were read one beyond
// f.max, so that the page can say whether more follow ("mehr") and where
// the next one starts (the last item's change sequence).
func writeFeed[T any](s *Shop, w http.ResponseWriter, r *http.Request, tx *sql.Tx, typ string, f feedQuery,
	items []T, seq func(T) int64, toXML func(T) any) error {
	more := len(items) > f.max
	if more {
		items = items[:f.max]
	}
	var last int64
	if len(items) > 0 {
		last = seq(items[len(items)-1])
	}
	root, err := s.feedRoot(r.Context(), tx, typ, f, r.Form.Get("since"), len(items), last, more)
	if err != nil {
		return err
	}
	st, err := startStream(w, root)
	if err != nil {
		return err
	}
	for _, it := range items {
		if err := st.item(toXML(it)); err != nil {
			return err
		}
	}
	return st.end(root)
}

// exportCatalog dumps the whole catalog with descriptions (a few hundred
// KB), written progressively: the large response for streaming tests.
func (s *Shop) exportCatalog(w http.ResponseWriter, r *http.Request) error {
	if err := form(w, r); err != nil {
		return err
	}
	f := articleFilter{kat: strings.ToUpper(strings.TrimSpace(r.Form.Get("cat")))}
	return s.readTx(r.Context(), func(tx *sql.Tx) error {
		total, err := countArticles(r.Context(), tx, f)
		if err != nil {
			return err
		}
		root := xml.StartElement{Name: xml.Name{Local: "katalog_export"}, Attr: attrs(
			"anzahl", strconv.Itoa(total), "stand", s.now().In(s.cfg.Location).Format(dateLayout))}
		st, err := startStream(w, root)
		if err != nil {
			return err
		}
		if err := eachArticle(r.Context(), tx, f, 0, -1, func(a article) error {
			return st.item(toXMLArtikel(a, full, s.cfg.Location))
		}); err != nil {
			return err
		}
		return st.end(root)
	})
}
