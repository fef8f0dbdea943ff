package doctest

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeTour runs README.md's tour, as written, against a fresh demo.
func TestReadmeTour(t *testing.T) {
	cmds := extract(t, "../../README.md", "tour")
	d := startDemo(t)
	rs := d.runAll(cmds)
	everyExitsZero(t, rs)

	// 1. The facade names the route and the backend.
	expect(t, find(t, rs, "catalog.do?page=1")[0], `HTTP/1\.1 200`, `X-Ficus-Route: legacy-catalog`, `X-Ficus-Backend: legacy`, `X-Request-Id: \S+`)
	expect(t, find(t, rs, "productDetail.do?art_nr=ART-1001")[0], `ART-1001`)
	// 2. At 0 % the legacy side answers; the beta user reaches the new side.
	var anon, beta result
	for _, r := range find(t, rs, "/api/v1/products/ART-1001") {
		if strings.Contains(r.text, "beta-anna") {
			beta = r
		} else {
			anon = r
		}
	}
	expect(t, anon, `^X-Ficus-Backend: legacy\s*$`)
	expect(t, beta, `^X-Ficus-Backend: new\s*$`)
	// 3. The canary moved, and routes and audit show it.
	expect(t, find(t, rs, "ctl canary products 25")[0], `products`, `25`)
	expect(t, find(t, rs, "ctl routes")[0], `(?m)^products\s+25%`)
	expect(t, find(t, rs, "ctl audit")[0], `tour: first canary step`)
	// 4 and 5. One order per intent: the retry after the canary moved
	// replays the first answer from the same side.
	posts := find(t, rs, "Idempotency-Key: tour-1")
	if len(posts) != 2 {
		t.Fatalf("the tour posts tour-1 %d times, want 2", len(posts))
	}
	expect(t, posts[0], `HTTP/1\.1 201`, `X-Ficus-Backend: legacy`)
	id := regexp.MustCompile(`"orderId":"([^"]+)"`).FindStringSubmatch(posts[0].out)
	if id == nil {
		t.Fatalf("step 4 answered no orderId:\n%s", posts[0].out)
	}
	expect(t, posts[1], `X-Ficus-Backend: legacy`, regexp.QuoteMeta(`"orderId":"`+id[1]+`"`))
	// 6. Reconcile is clean (it exits 0 only then, checked above).
	expect(t, find(t, rs, "ctl reconcile")[0], `: 0 difference\(s\)`)
	// 7. The shadow report shows the seeded difference the tour explains.
	sh := find(t, rs, "ctl shadow report products")[0]
	expect(t, sh, `products`, `/version`)
	// 8. The outage opens the legacy's breaker.
	expect(t, find(t, rs, "ficus_breaker_state")[0], `ficus_breaker_state\{[^}]*"legacy"[^}]*\} 2`)
	// 9. The retirement report answers.
	expect(t, find(t, rs, "ctl retire report")[0], `products`)
}

// TestHarnessCatchesBrokenDocs is the seeded violation: a doc region whose
// command fails, or whose marker is renamed, must fail the doc tests.
func TestHarnessCatchesBrokenDocs(t *testing.T) {
	md := t.TempDir() + "/doc.md"
	doc := "text\n<!-- x:begin -->\n```sh\n# 1. first\necho 'X-Ficus-Backend: legacy' \\\n  | grep 'X-Ficus-Backend: new'\nexport A=1\necho \"a=$A\"\n```\n<!-- x:end -->\n"
	if err := os.WriteFile(md, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cmds := extract(t, md, "x")
	if len(cmds) != 3 || cmds[0].step != "# 1. first" || !strings.Contains(cmds[0].text, "| grep") {
		t.Fatalf("extracted %+v", cmds)
	}
	d := &demo{t: t, dir: t.TempDir(), off: 100}
	rs := d.runAll(cmds)
	if rs[0].code != 1 {
		t.Errorf("a grep that finds nothing exited %d, want 1", rs[0].code)
	}
	if strings.TrimSpace(rs[2].out) != "a=1" {
		t.Errorf("exports do not carry to later commands: %q", rs[2].out)
	}
	if got := d.rewrite("curl http://127.0.0.1:8080/x && ./bin/ficus ctl reconcile --wait 1s"); got != "curl http://127.0.0.1:8180/x && ./bin/ficus ctl --admin http://127.0.0.1:8190 reconcile --legacy http://127.0.0.1:8181 --catalog http://127.0.0.1:8182 --orders http://127.0.0.1:8183 --wait 1s" {
		t.Errorf("rewrite: %s", got)
	}
	// A renamed marker: no runnable block is a failure, not a pass.
	if _, err := parseDoc(md, "renamed"); err == nil {
		t.Error("a doc without the marker did not fail")
	}
}
