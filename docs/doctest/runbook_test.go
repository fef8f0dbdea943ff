package doctest

import (
	"testing"
)

// TestOperationsRunbook runs docs/operations.md's runbook, as written,
// against a fresh demo.
func TestOperationsRunbook(t *testing.T) {
	cmds := extract(t, "../../docs/operations.md", "runbook")
	d := startDemo(t)
	rs := d.runAll(cmds)
	everyExitsZero(t, rs)

	expect(t, find(t, rs, "ctl status")[0], `fleet: healthy`, `(?m)^products\s+legacy\s+0%`)
	expect(t, find(t, rs, "ctl routes")[0], `(?m)^products\s+0%`)
	// 1. The printed configuration validates unchanged, flag file included.
	expect(t, find(t, rs, "gateway --config ficus.yaml --check")[0], `ficus.yaml: valid`)
	expect(t, find(t, rs, "curl", "/api/v1/products/ART-1001")[0], `X-Ficus-Route: products`, `X-Ficus-Backend: legacy`)
	// 2. The shadow report.
	expect(t, find(t, rs, "ctl shadow report products")[0], `products`)
	// 3. Canary steps, audited; pin and resume.
	expect(t, find(t, rs, "ctl audit --route products")[0], `CAT-12 step 1`, `CAT-12 step 3`)
	expect(t, find(t, rs, "ctl pin products legacy")[0], `legacy`)
	// 4. 100 %, and the stores agree.
	expect(t, find(t, rs, "ctl canary products 100")[0], `100`)
	expect(t, find(t, rs, "ctl reconcile")[0], `: 0 difference\(s\)`)
	// 5. The retirement report.
	expect(t, find(t, rs, "ctl retire report")[0], `products`)
}
