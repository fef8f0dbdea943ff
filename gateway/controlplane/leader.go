package controlplane

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Leadership says whether this replica does the fleet's once-per-fleet
// work (the autopilot, retention sweeps). Safe for concurrent use.
type Leadership interface {
	// IsLeader reports whether this replica leads now.
	IsLeader() bool
	// Watch returns a channel that receives the current value at once and
	// then every change (latest value wins if the reader is slow). The
	// channel is closed when the elector stops.
	Watch() <-chan bool
}

// Elector runs a leader election. Use NewSingleElector for a single
// process (SQLite) and NewPostgresElector for a fleet.
type Elector struct {
	mu      sync.Mutex
	leader  bool
	subs    []chan bool
	done    bool
	gauge   prometheus.Gauge
	run     func(ctx context.Context, e *Elector)
	stopped chan struct{}
}

var _ Leadership = (*Elector)(nil)

func newElector(reg prometheus.Registerer, run func(context.Context, *Elector)) (*Elector, error) {
	e := &Elector{run: run, stopped: make(chan struct{}), gauge: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: MetricLeader, Help: "1 while this replica leads the fleet (runs once-per-fleet work), else 0.",
	})}
	if reg != nil {
		if err := reg.Register(e.gauge); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// NewSingleElector: the only process leads as soon as Run starts.
func NewSingleElector(reg prometheus.Registerer) (*Elector, error) {
	return newElector(reg, func(ctx context.Context, e *Elector) {
		e.set(true)
		<-ctx.Done()
	})
}

// NewPostgresElector leads while it holds a session-level advisory lock
// on its own connection (not from the pool, so that no other work can
// release it). It checks that connection every interval (default 1 s);
// when the check fails it steps down at once, and it tries to take the
// lock again every interval. A replica that dies releases the lock with
// its session, so another replica leads within about one interval.
func NewPostgresElector(pool *pgxpool.Pool, interval time.Duration, reg prometheus.Registerer, log *slog.Logger) (*Elector, error) {
	if interval <= 0 {
		interval = time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return newElector(reg, func(ctx context.Context, e *Elector) {
		var conn *pgx.Conn
		closeConn := func() {
			if conn != nil {
				cctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = conn.Close(cctx)
				cancel()
				conn = nil
			}
		}
		defer closeConn()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			cctx, cancel := context.WithTimeout(ctx, max(interval, 2*time.Second))
			if conn == nil {
				c, err := pgx.ConnectConfig(cctx, pool.Config().ConnConfig.Copy())
				if err == nil {
					conn = c
				}
			}
			if conn != nil {
				if e.IsLeader() {
					if err := conn.Ping(cctx); err != nil {
						log.Warn("lost the control plane connection; stepping down as fleet leader", "err", err)
						e.set(false)
						closeConn()
					}
				} else {
					var got bool
					if err := conn.QueryRow(cctx, `SELECT pg_try_advisory_lock($1)`, lockLeader).Scan(&got); err != nil {
						closeConn()
					} else if got {
						log.Info("this replica now leads the fleet")
						e.set(true)
					}
				}
			}
			cancel()
			select {
			case <-ctx.Done():
				e.set(false)
				return
			case <-t.C:
			}
		}
	})
}

// Run elects until ctx ends, then steps down and closes every Watch
// channel.
func (e *Elector) Run(ctx context.Context) error {
	defer close(e.stopped)
	e.run(ctx, e)
	e.set(false)
	e.mu.Lock()
	e.done = true
	for _, c := range e.subs {
		close(c)
	}
	e.subs = nil
	e.mu.Unlock()
	return nil
}

// IsLeader reports whether this replica leads now.
func (e *Elector) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

// Watch: see Leadership.
func (e *Elector) Watch() <-chan bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := make(chan bool, 1)
	if e.done {
		close(c)
		return c
	}
	c <- e.leader
	e.subs = append(e.subs, c)
	return c
}

func (e *Elector) set(v bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.leader == v {
		return
	}
	e.leader = v
	e.gauge.Set(b2f(v))
	for _, c := range e.subs {
		select { // latest wins: drop an unread older value
		case <-c:
		default:
		}
		c <- v
	}
}
