package legacy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Order status codes (sts_cd) as the legacy stores and sends them.
const (
	stsNew       = 1  // entered (phone or fax), no stock reserved yet
	stsReserved  = 3  // stock reserved, awaiting payment
	stsPaid      = 7  // paid, awaiting shipment
	stsShipped   = 9  // shipped; final
	stsCancelled = 99 // cancelled; final
)

var statusText = map[int]string{
	stsNew:       "NEU",
	stsReserved:  "RESERVIERT",
	stsPaid:      "BEZAHLT",
	stsShipped:   "VERSANDT",
	stsCancelled: "STORNIERT",
}

// Business error codes, sent as HTTP 200 with <error code="...">. Codes are
// the contract; messages are for humans and may change.
const (
	errUnknownArticle    = "E001"
	errInsufficientStock = "E002"
	errIllegalTransition = "E003"
	errUnknownOrder      = "E004"
	errBadInput          = "E005"
	errUnknownCustomer   = "E006"
	errExtRefConflict    = "E007"
)

// bizError is a business rule violation: the legacy answers it with HTTP 200
// and an <error> body, as the old application always did.
type bizError struct {
	Code string
	Msg  string
}

func (e *bizError) Error() string { return e.Code + ": " + e.Msg }

func bizErrorf(code, format string, args ...any) error {
	return &bizError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

type article struct {
	ArtNr, Bez, Beschr, Kat, EAN string
	PreisCt                      int64
	Bestand                      int
	Geaendert                    int64
	ChgSeq                       int64
}

type orderLine struct {
	PosNr   int
	ArtNr   string
	Bez     string
	Menge   int
	PreisCt int64
}

type order struct {
	OrdNo     int64
	CustNo    string
	Sts       int
	ExtRef    string
	SummeCt   int64
	Angelegt  int64
	Geaendert int64
	ChgSeq    int64
	Lines     []orderLine
}

// querier is what both *sql.DB and *sql.Tx offer, so reads run the same
// inside a write transaction and on the read pool.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const articleCols = `art_nr, bez, beschr, kat, ean, preis_ct, bestand, geaendert, chg_seq`

func scanArticle(sc interface{ Scan(...any) error }) (article, error) {
	var a article
	err := sc.Scan(&a.ArtNr, &a.Bez, &a.Beschr, &a.Kat, &a.EAN, &a.PreisCt, &a.Bestand, &a.Geaendert, &a.ChgSeq)
	return a, err
}

func getArticle(ctx context.Context, q querier, artNr string) (article, error) {
	a, err := scanArticle(q.QueryRowContext(ctx, `SELECT `+articleCols+` FROM artikel WHERE art_nr = ?`, artNr))
	if errors.Is(err, sql.ErrNoRows) {
		return a, bizErrorf(errUnknownArticle, "unknown article %s", artNr)
	}
	return a, err
}

// articleFilter selects articles: by category (empty: all) or, for the
// feed, by change sequence or change time.
type articleFilter struct {
	kat string
	fq  *feedQuery
}

func (f articleFilter) where() (string, []any) {
	switch {
	case f.fq != nil && f.fq.byTime:
		return ` WHERE geaendert >= ?`, []any{f.fq.at}
	case f.fq != nil:
		return ` WHERE chg_seq > ?`, []any{f.fq.seq}
	case f.kat != "":
		return ` WHERE kat = ?`, []any{f.kat}
	}
	return "", nil
}

func countArticles(ctx context.Context, q querier, f articleFilter) (int, error) {
	where, args := f.where()
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM artikel`+where, args...).Scan(&n)
	return n, err
}

// eachArticle calls fn for each selected article in catalog order (or change
// order for the feed), streaming rows instead of loading them all.
func eachArticle(ctx context.Context, q querier, f articleFilter, offset, limit int, fn func(article) error) error {
	where, args := f.where()
	order := ` ORDER BY sort_nr`
	if f.fq != nil {
		order = ` ORDER BY chg_seq`
	}
	rows, err := q.QueryContext(ctx, `SELECT `+articleCols+` FROM artikel`+where+order+` LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		a, err := scanArticle(rows)
		if err != nil {
			return err
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	return rows.Err()
}

func categories(ctx context.Context, q querier) (map[string]int, []string, error) {
	rows, err := q.QueryContext(ctx, `SELECT kat, COUNT(*) FROM artikel GROUP BY kat ORDER BY kat`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	counts := map[string]int{}
	var names []string
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, nil, err
		}
		counts[k] = n
		names = append(names, k)
	}
	return counts, names, rows.Err()
}

func customerExists(ctx context.Context, q querier, custNo string) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM kunde WHERE cust_no = ?`, custNo).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// queryOrders loads whole orders (with lines) chosen by cond, ordered by the
// auftrag column orderBy, at most limit of them.
func queryOrders(ctx context.Context, q querier, cond, orderBy string, limit int, args ...any) ([]order, error) {
	rows, err := q.QueryContext(ctx, `
SELECT a.ord_no, a.cust_no, a.sts_cd, COALESCE(a.ext_ref, ''), a.summe_ct, a.angelegt, a.geaendert, a.chg_seq,
       p.pos_nr, p.art_nr, ar.bez, p.menge, p.preis_ct
FROM (SELECT * FROM auftrag WHERE `+cond+` ORDER BY `+orderBy+` LIMIT ?) a
JOIN auftrag_pos p ON p.ord_no = a.ord_no
JOIN artikel ar ON ar.art_nr = p.art_nr
ORDER BY a.`+orderBy+`, p.pos_nr`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []order
	for rows.Next() {
		var o order
		var l orderLine
		if err := rows.Scan(&o.OrdNo, &o.CustNo, &o.Sts, &o.ExtRef, &o.SummeCt, &o.Angelegt, &o.Geaendert, &o.ChgSeq,
			&l.PosNr, &l.ArtNr, &l.Bez, &l.Menge, &l.PreisCt); err != nil {
			return nil, err
		}
		if n := len(out); n > 0 && out[n-1].OrdNo == o.OrdNo {
			out[n-1].Lines = append(out[n-1].Lines, l)
			continue
		}
		o.Lines = []orderLine{l}
		out = append(out, o)
	}
	return out, rows.Err()
}

func getOrder(ctx context.Context, q querier, ordNo int64) (order, error) {
	os, err := queryOrders(ctx, q, `ord_no = ?`, `ord_no`, 1, ordNo)
	if err != nil {
		return order{}, err
	}
	if len(os) == 0 {
		return order{}, bizErrorf(errUnknownOrder, "unknown order %d", ordNo)
	}
	return os[0], nil
}

// placeOrder reserves stock for every line and creates the order in status
// 3, all in one write transaction: either every line is reserved or nothing
// is written. A repeated ext_ref returns the order it created first
// (replay true) without touching stock.
func (s *Shop) placeOrder(ctx context.Context, req orderRequest) (o order, replay bool, err error) {
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if req.ExtRef != "" {
			var ordNo int64
			var cust string
			err := tx.QueryRowContext(ctx, `SELECT ord_no, cust_no FROM auftrag WHERE ext_ref = ?`, req.ExtRef).Scan(&ordNo, &cust)
			switch {
			case err == nil && cust != req.CustNo:
				return bizErrorf(errExtRefConflict, "ext_ref %q already used by another customer", req.ExtRef)
			case err == nil:
				replay = true
				o, err = getOrder(ctx, tx, ordNo)
				return err
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		ok, err := customerExists(ctx, tx, req.CustNo)
		if err != nil {
			return err
		}
		if !ok {
			return bizErrorf(errUnknownCustomer, "unknown customer %s", req.CustNo)
		}
		prices := make([]int64, len(req.Items))
		var total int64
		for i, it := range req.Items {
			a, err := getArticle(ctx, tx, it.ArtNr)
			if err != nil {
				return err
			}
			if a.Bestand < it.Qty {
				return bizErrorf(errInsufficientStock, "insufficient stock for %s: %d requested, %d available", it.ArtNr, it.Qty, a.Bestand)
			}
			prices[i] = a.PreisCt
			total += a.PreisCt * int64(it.Qty)
		}
		now := s.now().Unix()
		seq, err := nextSeq(ctx, tx)
		if err != nil {
			return err
		}
		var ext any
		if req.ExtRef != "" {
			ext = req.ExtRef
		}
		var ordNo int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO auftrag (ord_no, cust_no, sts_cd, ext_ref, summe_ct, angelegt, geaendert, chg_seq)
			VALUES ((SELECT COALESCE(MAX(ord_no), ?) + 1 FROM auftrag), ?, ?, ?, ?, ?, ?, ?) RETURNING ord_no`,
			firstOrderNo-1, req.CustNo, stsReserved, ext, total, now, now, seq).Scan(&ordNo); err != nil {
			return fmt.Errorf("inserting order: %w", err)
		}
		for i, it := range req.Items {
			if _, err := tx.ExecContext(ctx, `INSERT INTO auftrag_pos (ord_no, pos_nr, art_nr, menge, preis_ct) VALUES (?, ?, ?, ?, ?)`,
				ordNo, i+1, it.ArtNr, it.Qty, prices[i]); err != nil {
				return fmt.Errorf("inserting order line: %w", err)
			}
			if err := moveStock(ctx, tx, it.ArtNr, -it.Qty, now); err != nil {
				return err
			}
		}
		o, err = getOrder(ctx, tx, ordNo)
		return err
	})
	return o, replay, err
}

// moveStock changes an article's stock by delta and numbers the change. The
// CHECK (bestand >= 0) constraint is a second line of defence against
// overselling; placeOrder checks first so that callers get E002.
func moveStock(ctx context.Context, tx *sql.Tx, artNr string, delta int, now int64) error {
	seq, err := nextSeq(ctx, tx)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE artikel SET bestand = bestand + ?, geaendert = ?, chg_seq = ? WHERE art_nr = ?`,
		delta, now, seq, artNr); err != nil {
		return fmt.Errorf("moving stock of %s by %d: %w", artNr, delta, err)
	}
	return nil
}

// transition is one legal status change: the states it leaves, the state it
// enters, and whether it gives reserved stock back.
type transition struct {
	name    string
	from    []int
	to      int
	restock func(from int) bool
}

var (
	payTransition    = transition{name: "pay", from: []int{stsReserved}, to: stsPaid}
	shipTransition   = transition{name: "ship", from: []int{stsPaid}, to: stsShipped}
	cancelTransition = transition{name: "cancel", from: []int{stsNew, stsReserved, stsPaid}, to: stsCancelled,
		// A new (1) order never reserved stock, so it has none to return.
		restock: func(from int) bool { return from == stsReserved || from == stsPaid }}
)

// changeStatus applies t to the order in one write transaction, returning
// E004 for an unknown order and E003 when t does not leave its status.
func (s *Shop) changeStatus(ctx context.Context, ordNo int64, t transition) (order, error) {
	var o order
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if o, err = getOrder(ctx, tx, ordNo); err != nil {
			return err
		}
		legal := false
		for _, f := range t.from {
			legal = legal || f == o.Sts
		}
		if !legal {
			return bizErrorf(errIllegalTransition, "cannot %s order %d in status %d (%s)", t.name, ordNo, o.Sts, statusText[o.Sts])
		}
		now := s.now().Unix()
		seq, err := nextSeq(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE auftrag SET sts_cd = ?, geaendert = ?, chg_seq = ? WHERE ord_no = ?`, t.to, now, seq, ordNo); err != nil {
			return fmt.Errorf("updating order %d: %w", ordNo, err)
		}
		if t.restock != nil && t.restock(o.Sts) {
			for _, l := range o.Lines {
				if err := moveStock(ctx, tx, l.ArtNr, l.Menge, now); err != nil {
					return err
				}
			}
		}
		o, err = getOrder(ctx, tx, ordNo)
		return err
	})
	return o, err
}

// feedQuery is a parsed since= of an export feed.
type feedQuery struct {
	seq    int64 // changes with chg_seq > seq (when !byTime)
	at     int64 // changes at or after this Unix second (when byTime)
	byTime bool
	max    int
}

func ordersSince(ctx context.Context, q querier, f feedQuery) ([]order, error) {
	if f.byTime {
		return queryOrders(ctx, q, `geaendert >= ?`, `chg_seq`, f.max, f.at)
	}
	return queryOrders(ctx, q, `chg_seq > ?`, `chg_seq`, f.max, f.seq)
}

func headSeq(ctx context.Context, q querier) (int64, error) {
	var v int64
	err := q.QueryRowContext(ctx, `SELECT val FROM chg_counter WHERE id = 1`).Scan(&v)
	return v, err
}
