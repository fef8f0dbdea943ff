package dualrun_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/acl"
	"github.com/ficus-gw/ficus/acl/reconcile"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
)

func kinds(rep reconcile.Report) map[reconcile.Kind][]reconcile.Difference {
	out := map[reconcile.Kind][]reconcile.Difference{}
	for _, d := range rep.Differences {
		out[d.Kind] = append(out[d.Kind], d)
	}
	return out
}

// Reconcile must see intents, not only rows: both stores holding both
// copies of a twice-booked order is a difference, as is stock reserved for
// an order that does not exist and an Idempotency-Key stuck in its claim.
// Each violation is seeded into real services, and the clean world before
// shows none of them.
func TestReconcileSeesIntentsNotRows(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	s := w.syncer()
	defer s.Close()
	settle(t, s)
	later := func() reconcile.Report {
		t.Helper()
		// Three hours on: every claim and reservation is past its lease,
		// every order past the sync lag.
		rep, err := reconcile.Run(context.Background(), reconcile.Options{LegacyURL: w.legacyURL, CatalogURL: w.catalogURL,
			OrderURL: w.orderURL, Lag: time.Second, Now: func() time.Time { return time.Now().Add(3 * time.Hour) }})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if k := kinds(later()); len(k) != 0 {
		t.Fatalf("a clean world reports %v", k)
	}
	skus := w.stockedSKUs(5)

	// One key booked on both sides: by the order service, and by the ACL
	// path straight into the legacy (what a retry across sides did).
	id := w.newPlace("100002", skus[0], "twice-1")
	ordNo := w.legacyPlace("100002", skus[0], acl.ExtRefForKey("twice-1"))
	if id == "" || ordNo == "" {
		t.Fatalf("seeding the duplicate: %q %q", id, ordNo)
	}
	// Stock reserved under a reference no order carries.
	if st, body := w.send("POST", w.catalogURL+"/api/v1/products/"+skus[1]+"/stock-adjustments", "application/json",
		[]byte(`{"delta":-1,"reason":"order-reserved","reference":"ghost-order"}`), map[string]string{"Idempotency-Key": "ghost-1"}); st != 201 {
		t.Fatalf("seeding the orphan reservation: %d %s", st, body)
	}
	// A claim whose process died and that nothing resolved.
	db, err := sqlitedb.Open(w.orderDB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.W.Exec(`INSERT INTO idempotency_keys (key, request_hash, order_id, state, claimed_at) VALUES ('stuck-1', 'h', 'o-stuck', 'pending', ?)`,
		time.Now().Add(-10*time.Minute).UTC().Format(time.RFC3339Nano)); err != nil {
		t.Fatal(err)
	}
	settle(t, s)

	rep := later()
	k := kinds(rep)
	dup := k[reconcile.DuplicateIntent]
	if len(dup) != 1 || dup[0].Key != acl.ExtRefForKey("twice-1") || !strings.Contains(dup[0].New, id) {
		t.Errorf("duplicate intents: %+v, want one for twice-1 naming %s", dup, id)
	}
	if or := k[reconcile.OrphanReservation]; len(or) != 1 || or[0].Key != "ghost-order "+skus[1] {
		t.Errorf("orphan reservations: %+v", or)
	}
	if sc := k[reconcile.StuckClaim]; len(sc) != 1 || !strings.Contains(sc[0].New, "o-stuck") {
		t.Errorf("stuck claims: %+v", sc)
	}
	// The order rows agree (both stores hold both copies): only the
	// intent-level check sees the double booking. (The orphan reservation
	// also shows as a stock mismatch of its product.)
	for _, d := range rep.Differences {
		if d.Entity == "order" {
			t.Errorf("row difference: %+v", d)
		}
	}
	// The report is machine-readable.
	b, err := json.Marshal(rep)
	if err != nil || !strings.Contains(string(b), `"kind":"duplicate-intent"`) {
		t.Errorf("JSON report: %s %v", b, err)
	}
	if !slices.ContainsFunc(rep.Differences, func(d reconcile.Difference) bool { return d.Entity == "intent" }) {
		t.Error("no intent entity in the report")
	}
}
