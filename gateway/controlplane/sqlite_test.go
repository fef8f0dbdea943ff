package controlplane

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ficus-gw/ficus/internal/sqlitedb"
)

// A gateway from before the control plane kept display strings in
// admin.auditDB. Opening that file migrates it once: the history is kept
// (typed), and each route's last canary and pin become typed state.
func TestSQLiteImportsTheOldAuditLogOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ficus-audit.db")
	old, err := sqlitedb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Migrate(ctx, sqliteMigrations()[:1]); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][]any{
		{1000, "alice", "canary", "products", "0%", "25%", "start"},
		{2000, "alice", "canary", "products", "25%", "12.5%", "back off"},
		{3000, "bob", "pin", "products", "unpinned", "pinned:legacy", "incident"},
		{4000, "bob", "pin", "orders", "unpinned", "pinned:new", "try"},
		{5000, "bob", "resume", "orders", "pinned:new", "unpinned", "done"},
	} {
		if _, err := old.W.Exec(`INSERT INTO audit_log (at_ms, actor, action, route, from_state, to_state, reason, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, 'r')`, r...); err != nil {
			t.Fatal(err)
		}
	}
	_ = old.Close()

	s, err := OpenSQLite(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, o := snap.Routes["products"], snap.Routes["orders"]
	if snap.Version != 1 || p.Canary == nil || *p.Canary != 12.5 || p.PinValue() != PinLegacy || o.Canary != nil || o.PinValue() != PinNone {
		t.Fatalf("imported %+v (products %+v, orders %+v)", snap, p, o)
	}
	es, err := s.Audit(ctx, AuditQuery{})
	if err != nil || len(es) != 5 {
		t.Fatalf("history: %d entries, %v", len(es), err)
	}
	if es[0].Field != FieldPin || string(es[0].Old) != `"new"` || string(es[0].New) != `""` ||
		es[3].Field != FieldCanary || string(es[3].Old) != "25.0" || string(es[3].New) != "12.5" {
		t.Fatalf("typed history: %+v", es)
	}
}
