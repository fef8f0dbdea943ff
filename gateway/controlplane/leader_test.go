package controlplane

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ficus-gw/ficus/internal/pgdb"
	"github.com/ficus-gw/ficus/internal/pgtest"
)

func TestSingleElectorLeadsAndWatchReportsChanges(t *testing.T) {
	e, err := NewSingleElector(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	w := e.Watch()
	if <-w {
		t.Fatal("leader before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	select {
	case v := <-w:
		if !v || !e.IsLeader() || testutil.ToFloat64(e.gauge) != 1 {
			t.Fatalf("Watch %v, IsLeader %v", v, e.IsLeader())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no leadership change reported")
	}
	cancel()
	<-done
	if v, ok := <-w; ok && v {
		t.Fatal("still leader after Run returned")
	}
	if e.IsLeader() {
		t.Fatal("IsLeader after Run returned")
	}
}

func TestPostgresElectsOneLeaderAndStepsDownWhenTheDatabaseGoes(t *testing.T) {
	srv := pgtest.New(t)
	ctx := context.Background()
	var electors []*Elector
	var cancels []context.CancelFunc
	for range 3 {
		pool, err := pgdb.Open(ctx, srv.DSN("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		e, err := NewPostgresElector(pool, 50*time.Millisecond, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- e.Run(rctx) }()
		t.Cleanup(func() { cancel(); <-done })
		electors, cancels = append(electors, e), append(cancels, cancel)
	}
	leaders := func() []int {
		var out []int
		for i, e := range electors {
			if e.IsLeader() {
				out = append(out, i)
			}
		}
		return out
	}
	waitFor(t, 5*time.Second, "one leader", func() bool { return len(leaders()) == 1 })
	first := leaders()[0]
	cancels[first]() // the leader stops: its session ends, the lock is free
	waitFor(t, 5*time.Second, "a new leader", func() bool { l := leaders(); return len(l) == 1 && l[0] != first })
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "no leader without the database", func() bool { return len(leaders()) == 0 })
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a leader again", func() bool { return len(leaders()) == 1 })
}
