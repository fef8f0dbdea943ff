package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/internal/sqlitedb"
	"github.com/ficus-gw/ficus/newsvc/outbox"
)

// waitLimit bounds every wait in these tests; it is a deadline against a
// hung test, never a synchronisation point.
const waitLimit = 15 * time.Second

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))

var migrations = []sqlitedb.Migration{
	{Name: "things", SQL: `CREATE TABLE things (id TEXT PRIMARY KEY, n INTEGER NOT NULL)`},
	outbox.Migration,
	outbox.DedupMigration,
}

func openDB(t *testing.T, path string) *sqlitedb.DB {
	t.Helper()
	db, err := sqlitedb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(context.Background(), migrations); err != nil {
		_ = db.Close()
		t.Fatal(err)
	}
	return db
}

func newDB(t *testing.T) *sqlitedb.DB {
	t.Helper()
	db := openDB(t, filepath.Join(t.TempDir(), "svc.db"))
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// appendEvents commits n events of type typ (one transaction each, like n
// requests would) and returns them in commit order.
func appendEvents(t *testing.T, db *sqlitedb.DB, typ string, n int) []outbox.Envelope {
	t.Helper()
	out := make([]outbox.Envelope, 0, n)
	for i := range n {
		e, err := outbox.New(typ, 1, fmt.Sprintf("agg-%d", i), "req-1", "", map[string]int{"i": i}, fixedNow)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Tx(context.Background(), func(tx *sql.Tx) error {
			return outbox.Append(context.Background(), tx, e)
		}); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func ids(es []outbox.Envelope) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.EventID
	}
	return out
}

func TestNewBuildsAValidUTCEnvelope(t *testing.T) {
	t.Parallel()
	e, err := outbox.New("product.updated", 2, "ART-1", "req-9", "evt-0", map[string]string{"sku": "ART-1"}, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if e.OccurredAt.Location() != time.UTC || !e.OccurredAt.Equal(fixedNow) {
		t.Errorf("OccurredAt = %v, want %v in UTC", e.OccurredAt, fixedNow)
	}
	if len(e.EventID) != 36 {
		t.Errorf("EventID %q is not a UUID", e.EventID)
	}
	other, _ := outbox.New("product.updated", 2, "ART-1", "req-9", "", nil, fixedNow)
	if other.EventID == e.EventID {
		t.Error("two envelopes share an EventID")
	}
	raw, _ := json.Marshal(e)
	var wire map[string]any
	_ = json.Unmarshal(raw, &wire)
	for _, k := range []string{"type", "schemaVersion", "eventId", "occurredAt", "correlationId", "causationId", "aggregateId", "data"} {
		if _, ok := wire[k]; !ok {
			t.Errorf("wire form lacks %q: %s", k, raw)
		}
	}
	if wire["occurredAt"] != "2026-03-01T11:00:00Z" {
		t.Errorf("occurredAt on the wire = %v, want RFC 3339 UTC", wire["occurredAt"])
	}
}

func TestNewRejectsIncompleteEnvelopes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		typ     string
		version int
		agg     string
		data    any
		now     time.Time
	}{
		{"empty type", "", 1, "a", 1, fixedNow},
		{"version zero", "x.y", 0, "a", 1, fixedNow},
		{"no aggregate", "x.y", 1, "", 1, fixedNow},
		{"zero time", "x.y", 1, "a", 1, time.Time{}},
		{"unmarshalable data", "x.y", 1, "a", make(chan int), fixedNow},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := outbox.New(tc.typ, tc.version, tc.agg, "r", "", tc.data, tc.now); err == nil {
				t.Fatal("New accepted an incomplete envelope")
			}
		})
	}
}

func TestAppendIsPartOfTheCallersTransaction(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	rolledBack, _ := outbox.New("thing.changed", 1, "t1", "r1", "", map[string]int{"n": 1}, fixedNow)
	errBoom := errors.New("boom after the append")
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO things(id, n) VALUES ('t1', 1)`); err != nil {
			return err
		}
		if err := outbox.Append(ctx, tx, rolledBack); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Tx = %v", err)
	}
	events, err := outbox.Events(ctx, db.R, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 0 {
		t.Fatalf("rolled back transaction left %d events", len(events))
	}

	committed, _ := outbox.New("thing.changed", 1, "t1", "r2", "", map[string]int{"n": 2}, fixedNow)
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO things(id, n) VALUES ('t1', 2)`); err != nil {
			return err
		}
		return outbox.Append(ctx, tx, committed)
	}); err != nil {
		t.Fatal(err)
	}
	events, err = outbox.Events(ctx, db.R, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].EventID != committed.EventID || string(events[0].Data) != `{"n":2}` {
		t.Fatalf("after commit got %+v, want only %s", events, committed.EventID)
	}
	if !events[0].OccurredAt.Equal(fixedNow) || events[0].CorrelationID != "r2" || events[0].Seq < 1 {
		t.Errorf("stored event lost fields: %+v", events[0])
	}

	// The same event cannot be stored twice: the EventID is the dedupe key.
	err = db.Tx(ctx, func(tx *sql.Tx) error { return outbox.Append(ctx, tx, committed) })
	if err == nil {
		t.Error("appending a duplicate EventID succeeded")
	}
	if err := db.Tx(ctx, func(tx *sql.Tx) error { return outbox.Append(ctx, tx, outbox.Envelope{Type: "x"}) }); !errors.Is(err, outbox.ErrInvalidEnvelope) {
		t.Errorf("Append of an incomplete envelope = %v, want ErrInvalidEnvelope", err)
	}
}

func newPullApp(db *sqlitedb.DB, log *slog.Logger) *fiber.App {
	app := fiber.New(fiber.Config{ErrorHandler: apierr.Handler(log)})
	app.Use(apierr.RequestIDMiddleware(func() string { return "gen-id" }))
	app.Get("/api/v1/events", outbox.PullHandler(db))
	return app
}

func get(t *testing.T, app *fiber.App, target string) (int, []byte) {
	t.Helper()
	resp, err := app.Test(httptest.NewRequest(http.MethodGet, target, nil), int(waitLimit/time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestPullHandlerPagesThroughEveryEventOnce(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	want := appendEvents(t, db, "thing.changed", 25)
	app := newPullApp(db, testLogger(t))

	var got []string
	after := int64(0)
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not terminate")
		}
		status, body := get(t, app, fmt.Sprintf("/api/v1/events?after=%d&limit=10", after))
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, body)
		}
		var page outbox.Page
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		if page.Events == nil {
			t.Fatalf("events is null, want []: %s", body)
		}
		if len(page.Events) > 10 {
			t.Fatalf("page of %d events exceeds limit 10", len(page.Events))
		}
		if len(page.Events) == 0 {
			if page.Next != after {
				t.Errorf("empty page moved next from %d to %d", after, page.Next)
			}
			break
		}
		for _, e := range page.Events {
			got = append(got, e.EventID)
		}
		after = page.Next
	}
	if !slices.Equal(got, ids(want)) {
		t.Fatalf("paged events differ from committed order:\n got %v\nwant %v", got, ids(want))
	}

	status, body := get(t, app, "/api/v1/events")
	var page outbox.Page
	_ = json.Unmarshal(body, &page)
	if status != http.StatusOK || len(page.Events) != 25 || page.Next != page.Events[24].Seq {
		t.Errorf("default request: status %d, %d events, next %d", status, len(page.Events), page.Next)
	}
}

func TestPullHandlerRejectsBadParameters(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	app := newPullApp(db, testLogger(t))
	for _, q := range []string{"after=-1", "after=abc", "limit=0", "limit=1001", "limit=1e3", "after=99999999999999999999"} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			status, body := get(t, app, "/api/v1/events?"+q)
			var e apierr.Body
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body is not an error document: %s", body)
			}
			if status != http.StatusBadRequest || e.Code != apierr.CodeValidation || e.RequestID != "gen-id" || e.Message == "" {
				t.Errorf("got %d %+v, want 400 %s with requestId", status, e, apierr.CodeValidation)
			}
		})
	}
}

func TestDedupSeen(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	seen := func(id string, fail bool) bool {
		t.Helper()
		var s bool
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			var err error
			if s, err = outbox.Seen(ctx, tx, id); err != nil {
				return err
			}
			if fail {
				return errors.New("consumer failed after marking")
			}
			return nil
		})
		if err != nil && !fail {
			t.Fatal(err)
		}
		return s
	}
	if seen("e1", true) {
		t.Fatal("first delivery reported as seen")
	}
	if seen("e1", false) {
		t.Fatal("a rolled-back consumer transaction kept the mark: the redelivery would be lost")
	}
	if !seen("e1", false) {
		t.Fatal("second delivery of e1 not reported as seen")
	}
	if seen("e2", false) {
		t.Fatal("e2 reported as seen")
	}
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := outbox.Dedup{Now: func() time.Time { return fixedNow }}.Seen(ctx, tx, "")
		return err
	}); err == nil {
		t.Error("empty event id accepted")
	}
}
