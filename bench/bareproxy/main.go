// Command bareproxy is the benchmark's baseline: the least a Fiber v2
// reverse proxy can do (one catch-all route, proxy.Do with an explicit
// fasthttp.Client, no middleware). Ficus is built on the same stack, so the
// ratio Ficus / bareproxy is the cost of Ficus's own features (route match,
// flag, canary, breaker, metrics), separate from the cost of Fiber itself.
//
// With -prefork it serves the same route in Fiber's Prefork mode: one child
// process per CPU, each with GOMAXPROCS 1, sharing the port through
// SO_REUSEPORT. That is nginx's process-per-core model, so the benchmark can
// show what the framework reaches with it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/proxy"
	"github.com/valyala/fasthttp"

	"github.com/ficus-gw/ficus/bench/internal/loopback"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("bareproxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to listen on; port 0 picks a free port")
	addrFile := fs.String("addr-file", "", "write the bound host:port to this file once listening (empty: do not write)")
	upstream := fs.String("upstream", "", "base URL of the upstream, e.g. http://127.0.0.1:9000 (required)")
	maxConns := fs.Int("max-conns", 512, "connections to the upstream at most (the same cap Ficus uses by default)")
	prefork := fs.Bool("prefork", false, "Fiber's Prefork mode: one child process per CPU, each with GOMAXPROCS 1, sharing -listen's port (which must be fixed, not 0) through SO_REUSEPORT; -addr-file is not written")
	if err := fs.Parse(args); err != nil {
		return err
	}
	base, err := parseUpstream(*upstream)
	if err != nil {
		return err
	}
	if *maxConns <= 0 {
		return fmt.Errorf("-max-conns %d: must be positive", *maxConns)
	}
	if *prefork {
		if err := loopback.CheckFixed(*listen); err != nil {
			return fmt.Errorf("-prefork: %w", err)
		}
		return serveForked(newApp(base, newClient(*maxConns), true), *listen)
	}
	ln, err := loopback.Listen(*listen, *addrFile)
	if err != nil {
		return err
	}
	app := newApp(base, newClient(*maxConns), false)

	errc := make(chan error, 1)
	go func() { errc <- app.Listener(ln) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-errc:
		return err
	case <-sig:
	}
	return app.ShutdownWithTimeout(5 * time.Second)
}

// parseUpstream accepts only scheme://host:port, the form the proxy appends
// the request URI to.
func parseUpstream(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return "", errors.New("-upstream is required, e.g. http://127.0.0.1:9000")
	case err != nil:
		return "", fmt.Errorf("-upstream %q: %w", s, err)
	case u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "":
		return "", fmt.Errorf("-upstream %q: must be http://host:port without a path", s)
	}
	return "http://" + u.Host, nil
}

// newClient is the upstream connection pool. Its timeouts and limits are
// set explicitly because proxy's package-level default client has none.
func newClient(maxConns int) *fasthttp.Client {
	return &fasthttp.Client{
		MaxConnsPerHost:     maxConns,
		MaxIdleConnDuration: 30 * time.Second,
		ReadTimeout:         10 * time.Second,
		WriteTimeout:        10 * time.Second,
	}
}

// newApp is one catch-all route forwarding to base. The only addition to a
// bare proxy is an error handler, so that an upstream failure is a 502 (what
// every proxy under comparison answers) rather than Fiber's 500.
func newApp(base string, cli *fasthttp.Client, prefork bool) *fiber.App {
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		Prefork:               prefork,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			var fe *fiber.Error
			if errors.As(err, &fe) {
				return c.Status(fe.Code).SendString(fe.Message)
			}
			return c.Status(fiber.StatusBadGateway).SendString("bad gateway")
		},
	})
	app.All("/*", func(c *fiber.Ctx) error {
		return proxy.Do(c, base+c.OriginalURL(), cli)
	})
	return app
}

// serveForked runs app in Prefork mode on addr until SIGTERM or SIGINT. A
// child serves and shuts down on the signal. The parent only spawns and
// waits; on the signal it passes SIGTERM to every child and waits for them
// to exit (up to 5 s), so whoever stops the parent by its PID stops them all.
func serveForked(app *fiber.App, addr string) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	var (
		mu       sync.Mutex
		children []int
	)
	if !fiber.IsChild() {
		app.Hooks().OnFork(func(pid int) error {
			mu.Lock()
			children = append(children, pid)
			mu.Unlock()
			return nil
		})
	}
	errc := make(chan error, 1)
	go func() { errc <- app.Listen(addr) }()
	select {
	case err := <-errc:
		return err
	case <-sig:
	}
	if fiber.IsChild() {
		return app.ShutdownWithTimeout(5 * time.Second)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, pid := range children {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range children {
		// The parent's Listen reaps each child as it exits; until then
		// signal 0 still finds it.
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			return fmt.Errorf("child %d still running 5 s after SIGTERM", pid)
		}
	}
	return nil
}
