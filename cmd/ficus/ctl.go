package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ficus-gw/ficus/acl/reconcile"
	"github.com/ficus-gw/ficus/gateway/admin"
	"github.com/ficus-gw/ficus/gateway/retire"
	"github.com/ficus-gw/ficus/gateway/shadow"
)

// ctlCommand is one `ficus ctl` subcommand.
type ctlCommand struct {
	synopsis string
	run      func(ctx context.Context, c *ctlConn, fs *flag.FlagSet, args []string, env *environment) error
	flags    func(fs *flag.FlagSet)
	// noAdmin: the command does not call the admin API (needs no token).
	noAdmin bool
}

// ctlConn is how a ctl command reaches the gateway's admin API.
type ctlConn struct {
	*admin.Client
	// adminURL is the admin listener's base URL; timeout bounds one call
	// (with --watch, each call).
	http            *http.Client
	adminURL, token string
	timeout         time.Duration
}

var ctlCommands = map[string]ctlCommand{}

func init() {
	register("ctl", command{
		summary: "operate a running gateway: routes, canary, pin, resume, audit",
		usage: `
Usage: ficus ctl [--admin URL] [--token TOKEN] <command> [args] [flags]

Talks to a running gateway's admin API. The token comes from --token or the
FICUS_ADMIN_TOKEN environment variable (the demo's operator token is
demo-operator-token-change-me). Every change needs --reason and lands in the
audit log with the token's name.

Commands:
  status [ADMIN_URL ...]                  the fleet at a glance: each replica's readiness, control
                                          plane, state version and flags, each route's phase and
                                          breakers, and every problem; exit status 0 healthy,
                                          3 degraded (problems listed), 1 the command failed
  routes                                  list routes with live state, where each value comes
                                          from (config or control plane) and the state version
  canary ROUTE PERCENT --reason TEXT      send PERCENT of users to the new side
  pin ROUTE legacy|new --reason TEXT      pin a route to one backend
  resume ROUTE --reason TEXT              unpin: flag and canary decide again
                                          (canary, pin and resume take --expect-version N: the
                                          change is refused if the route changed after version N)
  audit [--route ROUTE] [--limit N]       show the audit log, newest first
  reload                                  re-read the gateway's configuration file and apply it,
                                          all or nothing (as SIGHUP); a refused file is listed
                                          with every reason and changes nothing
  shadow report [ROUTE]                   shadow diff rate, top differing fields with their noise, samples
  retire report [--window 168h]           legacy routes ready to delete, and who still calls the rest
  rollout start|status|promote|pause|resume|abort ROUTE
                                          the autopilot: progressive delivery with gates and
                                          automatic rollback ('ficus ctl rollout --help')
  reconcile [--legacy URL ...]            compare the legacy and new stores entity by entity;
                                          exit status 1 when they differ (needs no token)

Read commands (status, routes, audit, shadow report, retire report, rollout status, reconcile)
take -o table|json|yaml; status and routes take --watch (print again on every
change, --interval 2s). 'ficus ctl COMMAND --help' lists a command's flags.

Examples:
  export FICUS_ADMIN_TOKEN=demo-operator-token-change-me
  ficus ctl status
  ficus ctl routes -o json | jq '.routes[] | {name, canaryPercent}'
  ficus ctl routes --watch
  ficus ctl canary products 25 --reason "step 2 of the catalog rollout"
  ficus ctl canary products 50 --expect-version 7 --reason "step 3"
  ficus ctl pin orders legacy --reason "INC-142: new order service failing"
  ficus ctl audit --route products
  ficus ctl shadow report products
  ficus ctl retire report --window 72h
  ficus ctl reconcile
`,
		run: runCtl,
	})
	ctlCommands["routes"] = ctlCommand{
		synopsis: "routes [-o table|json|yaml] [--watch]",
		flags:    func(fs *flag.FlagSet) { addOutputFlag(fs); addWatchFlag(fs) },
		run: func(ctx context.Context, c *ctlConn, fs *flag.FlagSet, args []string, env *environment) error {
			if len(args) != 0 {
				return usageError{fmt.Errorf("routes takes no arguments")}
			}
			format, err := outputFormat(fs)
			if err != nil {
				return err
			}
			render := func(ctx context.Context, w io.Writer) error {
				rs, err := c.Routes(ctx)
				if err != nil {
					return err
				}
				st, err := c.Status(ctx)
				if err != nil {
					return err
				}
				return writeOutput(w, format, routesOutput{Status: st, Routes: rs}, func(w io.Writer) error {
					return admin.RenderRoutes(w, rs, &st)
				})
			}
			if watching(fs) {
				return watch(ctx, fs, c.timeout, env.stdout, env.stderr, format, render)
			}
			return render(ctx, env.stdout)
		},
	}
	reason := func(fs *flag.FlagSet) {
		fs.String("reason", "", "why (required; recorded in the audit log)")
		fs.Int64("expect-version", 0, "refuse the change (409) if the route changed after this state version (see `ficus ctl routes`)")
	}
	expect := func(fs *flag.FlagSet) int64 {
		v, _ := strconv.ParseInt(fs.Lookup("expect-version").Value.String(), 10, 64)
		return v
	}
	ctlCommands["canary"] = ctlCommand{
		synopsis: "canary ROUTE PERCENT --reason TEXT [--expect-version N]",
		flags:    reason,
		run: func(ctx context.Context, c *ctlConn, fs *flag.FlagSet, args []string, env *environment) error {
			if len(args) != 2 {
				return usageError{fmt.Errorf("canary needs ROUTE and PERCENT, e.g. ficus ctl canary products 25 --reason \"...\"")}
			}
			pct, err := strconv.ParseFloat(strings.TrimSuffix(args[1], "%"), 64)
			if err != nil {
				return usageError{fmt.Errorf("PERCENT %q is not a number between 0 and 100", args[1])}
			}
			res, err := c.SetCanary(ctx, args[0], pct, fs.Lookup("reason").Value.String(), expect(fs))
			if err != nil {
				return err
			}
			return admin.RenderChange(env.stdout, res)
		},
	}
	ctlCommands["pin"] = ctlCommand{
		synopsis: "pin ROUTE legacy|new --reason TEXT [--expect-version N]",
		flags:    reason,
		run: func(ctx context.Context, c *ctlConn, fs *flag.FlagSet, args []string, env *environment) error {
			if len(args) != 2 {
				return usageError{fmt.Errorf("pin needs ROUTE and BACKEND (legacy or new)")}
			}
			res, err := c.Pin(ctx, args[0], args[1], fs.Lookup("reason").Value.String(), expect(fs))
			if err != nil {
				return err
			}
			return admin.RenderChange(env.stdout, res)
		},
	}
	ctlCommands["resume"] = ctlCommand{
		synopsis: "resume ROUTE --reason TEXT [--expect-version N]",
		flags:    reason,
		run: func(ctx context.Context, c *ctlConn, fs *flag.FlagSet, args []string, env *environment) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("resume needs ROUTE")}
			}
			res, err := c.Resume(ctx, args[0], fs.Lookup("reason").Value.String(), expect(fs))
			if err != nil {
				return err
			}
			return admin.RenderChange(env.stdout, res)
		},
	}
	ctlCommands["audit"] = ctlCommand{
		synopsis: "audit [--route ROUTE] [--limit N] [-o table|json|yaml]",
		flags: func(fs *flag.FlagSet) {
			fs.String("route", "", "only this route's changes")
			fs.Int("limit", 50, "how many entries, newest first")
			addOutputFlag(fs)
		},
		run: func(ctx context.Context, c *ctlConn, fs *flag.FlagSet, args []string, env *environment) error {
			if len(args) != 0 {
				return usageError{fmt.Errorf("audit takes no arguments; use --route ROUTE")}
			}
			format, err := outputFormat(fs)
			if err != nil {
				return err
			}
			limit, _ := strconv.Atoi(fs.Lookup("limit").Value.String())
			es, err := c.Audit(ctx, fs.Lookup("route").Value.String(), limit)
			if err != nil {
				return err
			}
			if es == nil {
				es = []admin.AuditEntry{}
			}
			return writeOutput(env.stdout, format, es, func(w io.Writer) error { return admin.RenderAudit(w, es) })
		},
	}
}

func init() {
	ctlCommands["retire"] = ctlCommand{
		synopsis: "retire report [--window DURATION] [-o table|json|yaml]",
		flags: func(fs *flag.FlagSet) {
			fs.Duration("window", 0, "silence that makes a route ready to delete (default: the gateway's retire.window)")
			addOutputFlag(fs)
		},
		run: func(ctx context.Context, c *ctlConn, fs *flag.FlagSet, args []string, env *environment) error {
			if len(args) != 1 || args[0] != "report" {
				return usageError{fmt.Errorf("usage: ficus ctl retire report [--window 168h]")}
			}
			format, err := outputFormat(fs)
			if err != nil {
				return err
			}
			win, _ := time.ParseDuration(fs.Lookup("window").Value.String())
			rep, err := c.RetireReport(ctx, win)
			if err != nil {
				return err
			}
			return writeOutput(env.stdout, format, rep, func(w io.Writer) error { return retire.Render(w, rep) })
		},
	}
	ctlCommands["shadow"] = ctlCommand{
		synopsis: "shadow report [ROUTE] [-o table|json|yaml]",
		flags:    addOutputFlag,
		run: func(ctx context.Context, c *ctlConn, fs *flag.FlagSet, args []string, env *environment) error {
			if len(args) < 1 || len(args) > 2 || args[0] != "report" {
				return usageError{fmt.Errorf("usage: ficus ctl shadow report [ROUTE]")}
			}
			format, err := outputFormat(fs)
			if err != nil {
				return err
			}
			route := ""
			if len(args) == 2 {
				route = args[1]
			}
			reports, err := c.ShadowReports(ctx, route)
			if err != nil {
				return err
			}
			if format != formatTable {
				if reports == nil {
					reports = []shadow.Report{}
				}
				return writeOutput(env.stdout, format, reports, nil)
			}
			if len(reports) == 0 {
				fmt.Fprintln(env.stdout, "no route has shadow traffic configured (routes[].shadow.percent)")
			}
			for i, r := range reports {
				if i > 0 {
					fmt.Fprintln(env.stdout)
				}
				if err := shadow.RenderReport(env.stdout, r); err != nil {
					return err
				}
			}
			return nil
		},
	}
	ctlCommands["reconcile"] = ctlCommand{
		synopsis: "reconcile [--legacy URL] [--catalog URL] [--orders URL] [--lag 30s] [--wait 0s] [-o table|json|yaml]",
		noAdmin:  true,
		flags: func(fs *flag.FlagSet) {
			fs.String("legacy", "http://127.0.0.1:8081", "base URL of the legacy shop")
			fs.String("catalog", "http://127.0.0.1:8082", "base URL of the Catalog service")
			fs.String("orders", "http://127.0.0.1:8083", "base URL of the Order service")
			fs.Duration("lag", 30*time.Second, "how far the sync may be behind: younger one-sided orders are counted as still syncing")
			fs.Duration("wait", 0, "keep reconciling (every 2s) until clean or this much time has passed, then report")
			addOutputFlag(fs)
		},
		run: func(ctx context.Context, _ *ctlConn, fs *flag.FlagSet, args []string, env *environment) error {
			if len(args) != 0 {
				return usageError{fmt.Errorf("reconcile takes no arguments")}
			}
			format, err := outputFormat(fs)
			if err != nil {
				return err
			}
			lag, _ := time.ParseDuration(fs.Lookup("lag").Value.String())
			wait, _ := time.ParseDuration(fs.Lookup("wait").Value.String())
			opts := reconcile.Options{
				LegacyURL:  fs.Lookup("legacy").Value.String(),
				CatalogURL: fs.Lookup("catalog").Value.String(),
				OrderURL:   fs.Lookup("orders").Value.String(),
				Lag:        lag,
			}
			fmt.Fprintln(env.stderr, "reconciling the legacy and new stores (reads every product and order of both sides)...")
			deadline := time.Now().Add(wait)
			var rep reconcile.Report
			for {
				var err error
				if rep, err = reconcile.Run(ctx, opts); err != nil {
					return err
				}
				if rep.OK() || !time.Now().Before(deadline) {
					break
				}
				fmt.Fprintf(env.stderr, "%d difference(s); the sync may not have caught up, trying again...\n", len(rep.Differences))
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(2 * time.Second):
				}
			}
			if err := writeOutput(env.stdout, format, rep, rep.Print); err != nil {
				return err
			}
			if !rep.OK() {
				return exitCodeError{code: 1, msg: "the stores differ: see docs/migration.md, \"When reconcile reports differences\""}
			}
			return nil
		},
	}
}

func runCtl(ctx context.Context, args []string, env *environment) error {
	fs := newFlags("ctl", env)
	adminURL := fs.String("admin", "http://127.0.0.1:8090", "base URL of the gateway's admin listener")
	token := fs.String("token", "", "admin bearer token (default $FICUS_ADMIN_TOKEN)")
	timeout := fs.Duration("timeout", 10*time.Second, "time limit for the call")
	caCert := fs.String("cacert", "", "PEM file of the CA that signed the admin listener's certificate (admin.tls), when the system's CAs do not")
	// The global flags come before the subcommand; its own flags may come
	// anywhere after it.
	if err := parse(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return usageError{errors.New("a command is required: routes, canary, pin, resume or audit")}
	}
	sub, ok := ctlCommands[rest[0]]
	if !ok {
		return usageError{fmt.Errorf("unknown ctl command %q", rest[0])}
	}
	sfs := flag.NewFlagSet("ficus ctl "+rest[0], flag.ContinueOnError)
	sfs.SetOutput(env.stderr)
	if sub.flags != nil {
		sub.flags(sfs)
	}
	// --help prints the synopsis and the flags once, on stdout.
	sfs.Usage = func() {
		fmt.Fprintf(env.stdout, "Usage: ficus ctl %s\n", sub.synopsis)
		if hasFlags(sfs) {
			fmt.Fprintln(env.stdout, "\nFlags:")
			sfs.SetOutput(env.stdout)
			sfs.PrintDefaults()
			sfs.SetOutput(env.stderr)
		}
	}
	pos, err := parseInterleaved(sfs, rest[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if !watching(sfs) {
		limit := *timeout
		if f := sfs.Lookup("wait"); f != nil {
			// A command that waits gets its wait on top of the call's limit.
			w, _ := time.ParseDuration(f.Value.String())
			limit += w
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	if sub.noAdmin {
		return sub.run(ctx, nil, sfs, pos, env)
	}
	tok := *token
	if tok == "" {
		tok = os.Getenv("FICUS_ADMIN_TOKEN")
	}
	if tok == "" {
		return usageError{errors.New("no admin token: pass --token or set FICUS_ADMIN_TOKEN (the demo's is demo-operator-token-change-me)")}
	}
	hc, err := adminHTTPClient(*caCert)
	if err != nil {
		return usageError{err}
	}
	client, err := admin.NewClient(*adminURL, tok, hc)
	if err != nil {
		return usageError{err}
	}
	return sub.run(ctx, &ctlConn{Client: client, http: hc, adminURL: *adminURL, token: tok, timeout: *timeout}, sfs, pos, env)
}

// adminHTTPClient trusts caFile's certificates besides the system's; an
// empty caFile: the default client.
func adminHTTPClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return http.DefaultClient, nil
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--cacert: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--cacert %s: no PEM certificate in it", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// routesOutput is `ficus ctl routes -o json|yaml`: the replica's control
// plane and flag status, and every route.
type routesOutput struct {
	Status admin.Status      `json:"status"`
	Routes []admin.RouteView `json:"routes"`
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments, and returns the positional ones in order.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
