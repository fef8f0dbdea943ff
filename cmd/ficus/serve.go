package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
)

// shutdownGrace bounds how long a component may take to finish in-flight
// requests once asked to stop.
const shutdownGrace = 15 * time.Second

// listen opens a TCP listener and says what to do when the port is taken.
func listen(component, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s cannot listen on %s: %w (is another ficus running? stop it, or pass another address)", component, addr, err)
	}
	return ln, nil
}

// serveHTTP serves h on ln until ctx is done, then shuts down gracefully.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveFiber serves app on ln until ctx is done, then shuts down gracefully.
func serveFiber(ctx context.Context, ln net.Listener, app *fiber.App) error {
	errc := make(chan error, 1)
	go func() { errc <- app.Listener(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := app.ShutdownWithContext(sctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return <-errc
}

// group runs components until the first fails or ctx ends, then stops all
// and returns the first error.
type group struct {
	ctx      context.Context
	cancel   context.CancelFunc
	errc     chan error
	n        int
	cleanups []func()
}

func newGroup(ctx context.Context) *group {
	ctx, cancel := context.WithCancel(ctx)
	return &group{ctx: ctx, cancel: cancel, errc: make(chan error, 16)}
}

func (g *group) Go(name string, fn func(ctx context.Context) error) {
	g.n++
	go func() {
		err := fn(g.ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%s: %w", name, err)
		} else {
			err = nil
		}
		g.errc <- err
	}()
}

// Defer registers fn to run after every component has returned (in reverse
// order of registration): closing databases after their last user stopped.
func (g *group) Defer(fn func()) { g.cleanups = append(g.cleanups, fn) }

// Wait blocks until every component has returned, then runs the cleanups.
// The first component to return (with or without an error) stops the others.
func (g *group) Wait() error {
	var first error
	for i := 0; i < g.n; i++ {
		err := <-g.errc
		g.cancel()
		if first == nil && err != nil {
			first = err
		}
	}
	for i := len(g.cleanups) - 1; i >= 0; i-- {
		g.cleanups[i]()
	}
	return first
}
