package controlplane

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/internal/pgtest"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func TestPostgresNotifiesOtherReplicas(t *testing.T) {
	srv := pgtest.New(t)
	a, b := openPG(t, srv.DSN("postgres")), openPG(t, srv.DSN("postgres"))
	ctx := context.Background()
	waitFor(t, 5*time.Second, "listeners up", func() bool { return a.Connected() && b.Connected() })
	drain(b.Changed())
	if _, err := a.Apply(ctx, Change{Route: "products", Set: Patch{Canary: pct(40)}, Actor: "alice", Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Changed():
	case <-time.After(time.Second):
		t.Fatal("replica b got no notification within 1 s of replica a's write")
	}
	snap, err := b.Snapshot(ctx)
	if err != nil || *snap.Routes["products"].Canary != 40 {
		t.Fatalf("b reads %+v, %v", snap, err)
	}
}

func TestPostgresDownIsUnavailableThenRecovers(t *testing.T) {
	srv := pgtest.New(t)
	s := openPG(t, srv.DSN("postgres"))
	ctx := context.Background()
	waitFor(t, 5*time.Second, "listener up", s.Connected)
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := s.Apply(wctx, Change{Route: "products", Set: Patch{Canary: pct(1)}, Actor: "a", Reason: "r"})
	cancel()
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write with the database down: %v; want ErrUnavailable", err)
	}
	waitFor(t, 5*time.Second, "Connected() false", func() bool { return !s.Connected() })
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "Connected() again", func() bool {
		_, err := s.Version(ctx)
		return err == nil && s.Connected()
	})
	if _, err := s.Apply(ctx, Change{Route: "products", Set: Patch{Canary: pct(1)}, Actor: "a", Reason: "r"}); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
}
