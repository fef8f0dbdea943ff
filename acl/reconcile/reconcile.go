// Package reconcile compares the legacy shop with the new services entity by
// entity, through their APIs only, and reports every difference: entities
// missing on one side, and fields that disagree. The lead wires it as
// `ficus ctl reconcile`, which prints the report and exits non-zero when it
// is not empty.
//
// Both sides are read as the new contract sees them (legacy documents go
// through the ACL's translators), so a difference is one a client could
// notice. Run it when the sync is caught up: an order placed a second
// before shows up as missing until the next sync pass.
package reconcile

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ficus-gw/ficus/acl"
)

// Options says where the three systems are.
type Options struct {
	// LegacyURL, CatalogURL and OrderURL are the roots of the legacy shop,
	// the catalog and the order service. All required.
	LegacyURL, CatalogURL, OrderURL string
	// Location is the zone of the legacy's local times. nil means
	// Europe/Berlin.
	Location *time.Location
	// Client tunes the legacy client; its BaseURL is set from LegacyURL.
	Client acl.ClientConfig
	// HTTPClient calls the new services. nil means a 10s timeout client.
	HTTPClient *http.Client
	// Lag is how far the dual-run sync may be behind: an order younger
	// than Lag missing on one side, or a reservation or claim younger than
	// the order service's lease plus Lag, is still in flight and not
	// reported. 0 means 30s.
	Lag time.Duration
	// Now is the clock that ages orders, reservations and claims. nil
	// means time.Now.
	Now func() time.Time
}

// Kind is what a difference is.
type Kind string

// The kinds of difference.
const (
	// MissingInNew: the legacy has it, the new service does not.
	MissingInNew Kind = "missing-in-new"
	// MissingInLegacy: the new service has it, the legacy does not.
	MissingInLegacy Kind = "missing-in-legacy"
	// Mismatch: both have it, Field differs.
	Mismatch Kind = "mismatch"
	// DuplicateIntent: two or more orders share one Idempotency-Key
	// lineage (the order service's intentRef, the legacy's ext_ref): one
	// business intent was booked twice. Key is the lineage, New lists the
	// orders.
	DuplicateIntent Kind = "duplicate-intent"
	// OrphanReservation: the Catalog holds stock reserved under a
	// reference that names no order, older than the lease: stock taken for
	// an order that does not exist.
	OrphanReservation Kind = "orphan-reservation"
	// StuckClaim: an Idempotency-Key claim of the order service pending
	// beyond its lease and the sweeper's interval: its key can be neither
	// replayed nor retried.
	StuckClaim Kind = "stuck-claim"
)

// Difference is one disagreement.
type Difference struct {
	// Entity is "product", "order", "intent", "reservation" or "claim".
	Entity string `json:"entity"`
	// Key is the sku, the orderId (with the legacy number in brackets
	// when known), the intent lineage, the reservation's reference and sku,
	// or the claim's key fingerprint.
	Key  string `json:"key"`
	Kind Kind   `json:"kind"`
	// Field, Legacy and New are set for a Mismatch; New also lists the
	// orders of a DuplicateIntent and the details of the other kinds.
	Field  string `json:"field,omitempty"`
	Legacy string `json:"legacy,omitempty"`
	New    string `json:"new,omitempty"`
}

// Report is the outcome of a reconcile.
type Report struct {
	// Products and Orders count the distinct entities compared (the
	// union of both sides).
	Products int `json:"products"`
	Orders   int `json:"orders"`
	// InFlight counts orders missing on one side but younger than the
	// sync lag: not differences yet.
	InFlight int `json:"inFlight"`
	// Differences, products first, then orders, intents, reservations and
	// claims, each sorted by key.
	Differences []Difference `json:"differences"`
}

// OK reports whether both sides agree entirely.
func (r Report) OK() bool { return len(r.Differences) == 0 }

// Print writes the report as a table for operators, ending with a summary
// line.
func (r Report) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if len(r.Differences) > 0 {
		fmt.Fprintln(tw, "ENTITY\tKEY\tDIFFERENCE\tFIELD\tLEGACY\tNEW")
		for _, d := range r.Differences {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Entity, d.Key, d.Kind, dash(d.Field), dash(d.Legacy), dash(d.New))
		}
	}
	fmt.Fprintf(tw, "compared %d products and %d orders (%d still syncing): %d difference(s)\n", r.Products, r.Orders, r.InFlight, len(r.Differences))
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Run reads both sides and compares them.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.LegacyURL == "" || o.CatalogURL == "" || o.OrderURL == "" {
		return Report{}, errors.New("reconcile: LegacyURL, CatalogURL and OrderURL are required")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Lag == 0 {
		o.Lag = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.CatalogURL = strings.TrimSuffix(o.CatalogURL, "/")
	o.OrderURL = strings.TrimSuffix(o.OrderURL, "/")
	o.Client.BaseURL = o.LegacyURL
	legacy, err := acl.NewClient(o.Client, nil)
	if err != nil {
		return Report{}, fmt.Errorf("reconcile: %w", err)
	}
	tr, err := acl.NewTranslator(o.Location)
	if err != nil {
		return Report{}, err
	}
	r := &run{o: o, legacy: legacy, tr: tr}
	var rep Report
	if rep.Products, err = r.products(ctx, &rep); err != nil {
		return rep, err
	}
	if rep.Orders, err = r.orders(ctx, &rep); err != nil {
		return rep, err
	}
	if err := r.intents(ctx, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

type run struct {
	o      Options
	legacy *acl.Client
	tr     acl.Translator
	// extRefs is the legacy's ext_ref of every legacy order, by orderId.
	extRefs map[string]string
	// ids is every orderId either side holds.
	ids map[string]bool
}

// getAttempts bounds how often get asks again when a new service answers
// 429 (its rate limit: the order service allows each client 20 requests/s
// by default, and a client is its address when it sends no key, so
// reconcile shares that budget with the dual-run sync on the same host) or
// 503 with Retry-After (a breaker letting a probe through soon): such an
// answer delays a reconcile instead of failing it. retryAfterCap bounds one
// wait.
const (
	getAttempts   = 8
	retryAfterCap = 10 * time.Second
)

// get reads u's JSON answer into v, waiting out 429 and 503 answers as
// their Retry-After says (1 s when it says nothing usable), up to
// getAttempts tries.
func (r *run) get(ctx context.Context, u string, v any) error {
	for attempt := 1; ; attempt++ {
		wait, err := r.getOnce(ctx, u, v)
		if err == nil || wait < 0 {
			return err
		}
		if attempt == getAttempts {
			return fmt.Errorf("%w (refused %d times in a row: the service is rate-limiting or unavailable; run reconcile again when it is less loaded, or raise its limits)", err, attempt)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w; gave up waiting to retry: %w", err, ctx.Err())
		case <-t.C:
		}
	}
}

// getOnce is one GET. When it fails with 429 or 503, wait is how long the
// service asked to wait before asking again; otherwise wait is -1.
func (r *run) getOnce(ctx context.Context, u string, v any) (wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return -1, err
	}
	res, err := r.o.HTTPClient.Do(req)
	if err != nil {
		return -1, fmt.Errorf("reconcile: GET %s: %w", u, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return -1, fmt.Errorf("reconcile: GET %s: %w", u, err)
	}
	if res.StatusCode != http.StatusOK {
		err := fmt.Errorf("reconcile: GET %s: HTTP %d: %.300s", u, res.StatusCode, body)
		if res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable {
			return retryAfter(res.Header.Get("Retry-After")), err
		}
		return -1, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return -1, fmt.Errorf("reconcile: GET %s: %w", u, err)
	}
	return -1, nil
}

// retryAfter reads a Retry-After value in seconds (RFC 9110 10.2.3; the
// new services send seconds), capped at retryAfterCap; 1 s when it is
// missing or not a number of seconds.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n < 0 {
		return time.Second
	}
	return min(time.Duration(n)*time.Second, retryAfterCap)
}

func (r *run) products(ctx context.Context, rep *Report) (int, error) {
	export, err := r.legacy.CatalogExport(ctx, "")
	if err != nil {
		return 0, fmt.Errorf("reconcile: reading the legacy catalog: %w", err)
	}
	legacy := map[string]acl.Product{}
	for _, a := range export.Artikel {
		p, err := r.tr.Product(a)
		if err != nil {
			return 0, fmt.Errorf("reconcile: %w", err)
		}
		legacy[p.SKU] = p
	}
	newSide := map[string]acl.Product{}
	cursor := ""
	for {
		var page struct {
			Items      []acl.Product `json:"items"`
			NextCursor *string       `json:"nextCursor"`
		}
		u := r.o.CatalogURL + "/api/v1/products?limit=100"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		if err := r.get(ctx, u, &page); err != nil {
			return 0, err
		}
		for _, p := range page.Items {
			newSide[p.SKU] = p
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	keys := union(legacy, newSide)
	for _, k := range keys {
		l, inL := legacy[k]
		n, inN := newSide[k]
		switch {
		case !inN:
			rep.Differences = append(rep.Differences, Difference{Entity: "product", Key: k, Kind: MissingInNew})
		case !inL:
			rep.Differences = append(rep.Differences, Difference{Entity: "product", Key: k, Kind: MissingInLegacy})
		default:
			for _, f := range []struct{ name, l, n string }{
				{"name", l.Name, n.Name},
				{"description", l.Description, n.Description},
				{"category", l.Category, n.Category},
				{"price", money(l.Price), money(n.Price)},
				{"stock", strconv.FormatInt(l.Stock, 10), strconv.FormatInt(n.Stock, 10)},
			} {
				if f.l != f.n {
					rep.Differences = append(rep.Differences, Difference{Entity: "product", Key: k, Kind: Mismatch, Field: f.name, Legacy: f.l, New: f.n})
				}
			}
		}
	}
	return len(keys), nil
}

func money(m acl.Money) string {
	return fmt.Sprintf("%d %s", m.AmountMinor, m.Currency)
}

func union[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]V{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

// orders compares every legacy order (read from the orders feed, from the
// start) with the order service's orders of every customer either side
// knows (the legacy's, and those in the order service's events).
func (r *run) orders(ctx context.Context, rep *Report) (int, error) {
	legacy := map[string]acl.Order{}
	customers := map[string]bool{}
	r.extRefs = map[string]string{}
	var since int64
	for {
		e, err := r.legacy.OrdersSince(ctx, since, 1000)
		if err != nil {
			return 0, fmt.Errorf("reconcile: reading legacy orders: %w", err)
		}
		page, err := acl.Feed(e, "auftraege")
		if err != nil {
			return 0, fmt.Errorf("reconcile: reading legacy orders: %w", err)
		}
		for _, a := range e.Auftraege {
			o, err := r.tr.Order(a)
			if err != nil {
				return 0, fmt.Errorf("reconcile: %w", err)
			}
			legacy[o.ID] = o
			r.extRefs[o.ID] = strings.TrimSpace(a.ExtRef)
			customers[o.CustomerID] = true
		}
		since = page.Next
		if !page.More {
			break
		}
	}
	var after int64
	for {
		var page struct {
			Events []struct {
				Seq  int64     `json:"seq"`
				Data acl.Order `json:"data"`
			} `json:"events"`
		}
		if err := r.get(ctx, r.o.OrderURL+"/api/v1/events?limit=1000&after="+strconv.FormatInt(after, 10), &page); err != nil {
			return 0, err
		}
		for _, ev := range page.Events {
			if ev.Data.CustomerID != "" {
				customers[ev.Data.CustomerID] = true
			}
			after = ev.Seq
		}
		if len(page.Events) < 1000 {
			break
		}
	}
	newSide := map[string]acl.Order{}
	for c := range customers {
		cursor := ""
		for {
			var page struct {
				Items      []acl.Order `json:"items"`
				NextCursor string      `json:"nextCursor"`
			}
			u := r.o.OrderURL + "/api/v1/orders?limit=100&customerId=" + url.QueryEscape(c)
			if cursor != "" {
				u += "&cursor=" + url.QueryEscape(cursor)
			}
			if err := r.get(ctx, u, &page); err != nil {
				return 0, err
			}
			for _, o := range page.Items {
				newSide[o.ID] = o
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
	}
	keys := union(legacy, newSide)
	r.ids = make(map[string]bool, len(keys))
	settled := r.o.Now().Add(-r.o.Lag)
	for _, k := range keys {
		r.ids[k] = true
		l, inL := legacy[k]
		n, inN := newSide[k]
		key := k
		if inL {
			key = k + " [" + l.LegacyOrderNo + "]"
		}
		switch {
		case (!inN && l.CreatedAt.After(settled)) || (!inL && n.CreatedAt.After(settled)):
			rep.InFlight++ // the sync has not had its chance yet
		case !inN:
			rep.Differences = append(rep.Differences, Difference{Entity: "order", Key: key, Kind: MissingInNew})
		case !inL:
			rep.Differences = append(rep.Differences, Difference{Entity: "order", Key: key, Kind: MissingInLegacy})
		default:
			for _, f := range []struct{ name, l, n string }{
				{"customerId", l.CustomerID, n.CustomerID},
				{"status", string(l.Status), string(n.Status)},
				{"currency", l.Currency, n.Currency},
				{"total", money(l.Total), money(n.Total)},
				{"items", lines(l.Lines), lines(n.Lines)},
			} {
				if f.l != f.n {
					rep.Differences = append(rep.Differences, Difference{Entity: "order", Key: key, Kind: Mismatch, Field: f.name, Legacy: f.l, New: f.n})
				}
			}
		}
	}
	return len(keys), nil
}

// lines renders an order's lines comparably: sku, quantity and unit price,
// sorted by sku. Line names are left out on purpose: the legacy shows an
// article's current name, the new side the name at ordering time.
func lines(ls []acl.OrderLine) string {
	ls = slices.Clone(ls)
	slices.SortFunc(ls, func(a, b acl.OrderLine) int { return cmp.Compare(a.Sku, b.Sku) })
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("%s×%d@%d", l.Sku, l.Quantity, l.UnitPrice.AmountMinor)
	}
	return strings.Join(parts, ",")
}
