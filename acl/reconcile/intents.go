package reconcile

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/acl"
)

// intents checks what rows cannot show: that one Idempotency-Key is at most
// one order across both stores, that no stock is reserved for an order that
// does not exist, and that no key is stuck in a pending claim. It reads the
// order service's integrity endpoint and the Catalog's open reservations.
func (r *run) intents(ctx context.Context, rep *Report) error {
	type integrityPage struct {
		LeaseSeconds int64 `json:"leaseSeconds"`
		StaleClaims  []struct {
			KeyFingerprint string    `json:"keyFingerprint"`
			OrderID        string    `json:"orderId"`
			ClaimedAt      time.Time `json:"claimedAt"`
		} `json:"staleClaims"`
		Orders []struct {
			OrderID       string `json:"orderId"`
			IntentRef     string `json:"intentRef"`
			ExtRef        string `json:"extRef"`
			LegacyOrderNo string `json:"legacyOrderNo"`
		} `json:"orders"`
		NextCursor string `json:"nextCursor"`
	}
	now := r.o.Now()
	// lineage maps an intent to the distinct orders booked for it: the new
	// side's intentRef of orders it booked, the legacy's ext_ref of orders
	// booked through the anti-corruption layer (written-back orders carry
	// their new-side orderId as ext_ref and are the same order).
	lineage := map[string]map[string]bool{}
	add := func(intent, orderID string) {
		if intent == "" || acl.IsWriteBackRef(intent) {
			return
		}
		if lineage[intent] == nil {
			lineage[intent] = map[string]bool{}
		}
		lineage[intent][orderID] = true
	}
	for id, ref := range r.extRefs {
		add(ref, id)
	}
	var lease time.Duration
	cursor := ""
	for first := true; first || cursor != ""; first = false {
		var page integrityPage
		u := r.o.OrderURL + "/internal/v1/integrity?limit=1000"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		if err := r.get(ctx, u, &page); err != nil {
			return err
		}
		lease = time.Duration(page.LeaseSeconds) * time.Second
		if first {
			// A claim the sweeper had a whole lease (and the sync lag) to
			// resolve and did not is stuck; a younger one may be in hand.
			for _, c := range page.StaleClaims {
				if c.ClaimedAt.Before(now.Add(-2*lease - r.o.Lag)) {
					rep.Differences = append(rep.Differences, Difference{Entity: "claim", Key: c.KeyFingerprint, Kind: StuckClaim,
						New: fmt.Sprintf("order %s claimed at %s", c.OrderID, c.ClaimedAt.UTC().Format(time.RFC3339))})
				}
			}
		}
		for _, o := range page.Orders {
			r.ids[o.OrderID] = true
			add(o.IntentRef, o.OrderID)
			add(o.ExtRef, o.OrderID)
		}
		cursor = page.NextCursor
	}
	intents := make([]string, 0, len(lineage))
	for k := range lineage {
		intents = append(intents, k)
	}
	slices.Sort(intents)
	for _, k := range intents {
		if len(lineage[k]) > 1 {
			ids := make([]string, 0, len(lineage[k]))
			for id := range lineage[k] {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			rep.Differences = append(rep.Differences, Difference{Entity: "intent", Key: k, Kind: DuplicateIntent,
				New: strings.Join(ids, " ")})
		}
	}
	return r.reservations(ctx, rep, now.Add(-lease-r.o.Lag))
}

// reservations reports stock the Catalog holds under a reference that names
// no order, once it is older than cutoff.
func (r *run) reservations(ctx context.Context, rep *Report, cutoff time.Time) error {
	cursor := ""
	for first := true; first || cursor != ""; first = false {
		var page struct {
			Items []struct {
				Reference  string    `json:"reference"`
				SKU        string    `json:"sku"`
				Quantity   int64     `json:"quantity"`
				ReservedAt time.Time `json:"reservedAt"`
			} `json:"items"`
			NextCursor *string `json:"nextCursor"`
		}
		u := r.o.CatalogURL + "/api/v1/stock-reservations?limit=100"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		if err := r.get(ctx, u, &page); err != nil {
			return err
		}
		for _, it := range page.Items {
			if !r.ids[it.Reference] && it.ReservedAt.Before(cutoff) {
				rep.Differences = append(rep.Differences, Difference{Entity: "reservation", Key: it.Reference + " " + it.SKU,
					Kind: OrphanReservation, New: fmt.Sprintf("%d reserved at %s", it.Quantity, it.ReservedAt.UTC().Format(time.RFC3339))})
			}
		}
		cursor = ""
		if page.NextCursor != nil {
			cursor = *page.NextCursor
		}
	}
	return nil
}
