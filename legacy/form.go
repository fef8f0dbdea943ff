package legacy

import (
	"net/url"
	"strconv"
	"strings"
)

// Limits of a placeOrder form. They are part of the documented wire format.
const (
	maxOrderLines = 50
	maxLineQty    = 999
	maxExtRefLen  = 64
	maxIDLen      = 32
)

type orderItem struct {
	ArtNr string
	Qty   int
}

// orderRequest is a validated placeOrder form.
type orderRequest struct {
	CustNo string
	ExtRef string
	Items  []orderItem // distinct articles, in first-mention order
}

// parseOrderForm validates a placeOrder form. Lines come from repeated
// item=ART-1001:2 fields (":qty" may be omitted for 1) and/or one
// art_nr=...&qty=... pair, as the storefront's buy button sends. The same
// article named twice is one line with the quantities added. Every failure
// is an E005 bizError naming the field.
func parseOrderForm(form url.Values) (orderRequest, error) {
	var req orderRequest
	custNo := strings.TrimSpace(form.Get("cust_no"))
	if custNo == "" {
		return req, bizErrorf(errBadInput, "cust_no is required")
	}
	if len(custNo) > maxIDLen || !allDigits(custNo) {
		return req, bizErrorf(errBadInput, "cust_no must be digits only")
	}
	req.CustNo = custNo

	if ext, ok := form["ext_ref"]; ok && len(ext) > 0 {
		if len(ext) > 1 {
			return req, bizErrorf(errBadInput, "ext_ref given %d times", len(ext))
		}
		e := ext[0]
		if e == "" || len(e) > maxExtRefLen || !printableASCII(e) {
			return req, bizErrorf(errBadInput, "ext_ref must be 1-%d printable ASCII characters without spaces", maxExtRefLen)
		}
		req.ExtRef = e
	}

	index := map[string]int{}
	add := func(artNr string, qty int) error {
		if i, ok := index[artNr]; ok {
			if req.Items[i].Qty+qty > maxLineQty {
				return bizErrorf(errBadInput, "quantity of %s exceeds %d", artNr, maxLineQty)
			}
			req.Items[i].Qty += qty
			return nil
		}
		if len(req.Items) == maxOrderLines {
			return bizErrorf(errBadInput, "more than %d order lines", maxOrderLines)
		}
		index[artNr] = len(req.Items)
		req.Items = append(req.Items, orderItem{ArtNr: artNr, Qty: qty})
		return nil
	}
	for _, v := range form["item"] {
		art, qtyText, hasQty := strings.Cut(v, ":")
		artNr, err := parseArtNr(art, "item")
		if err != nil {
			return req, err
		}
		qty := 1
		if hasQty {
			if qty, err = parseQty(qtyText, "item "+artNr); err != nil {
				return req, err
			}
		}
		if err := add(artNr, qty); err != nil {
			return req, err
		}
	}
	if art, ok := form["art_nr"]; ok {
		if len(art) != 1 {
			return req, bizErrorf(errBadInput, "art_nr given %d times; use item= for several lines", len(art))
		}
		artNr, err := parseArtNr(art[0], "art_nr")
		if err != nil {
			return req, err
		}
		qty := 1
		if q := form.Get("qty"); q != "" {
			if qty, err = parseQty(q, "qty"); err != nil {
				return req, err
			}
		}
		if err := add(artNr, qty); err != nil {
			return req, err
		}
	}
	if len(req.Items) == 0 {
		return req, bizErrorf(errBadInput, "no order lines: send item=ART-NR:QTY")
	}
	return req, nil
}

func parseArtNr(s, field string) (string, error) {
	a := strings.ToUpper(strings.TrimSpace(s))
	if a == "" || len(a) > maxIDLen {
		return "", bizErrorf(errBadInput, "%s: article number missing or too long", field)
	}
	for _, c := range []byte(a) {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' {
			return "", bizErrorf(errBadInput, "%s: article number %q has illegal characters", field, a)
		}
	}
	return a, nil
}

func parseQty(s, field string) (int, error) {
	q, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || q < 1 || q > maxLineQty {
		return 0, bizErrorf(errBadInput, "%s: quantity must be a whole number from 1 to %d", field, maxLineQty)
	}
	return q, nil
}

func allDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func printableASCII(s string) bool {
	for _, c := range []byte(s) {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}
