package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ficus-gw/ficus/gateway/admin"
)

// rolloutSynopsis is `ficus ctl rollout --help`.
const rolloutSynopsis = `rollout start|promote|pause|resume|abort ROUTE --reason TEXT
       ficus ctl rollout status [ROUTE] [--watch] [-o table|json]

The autopilot's rollouts (routes with routes[].rollout in the config; ROUTE
may name the route or its cohort):
  start     legacy -> shadow (or the first canary step without a shadow gate);
            after a rollback: from the beginning
  promote   approve leaving the current manual step (may be given early)
  pause     freeze where it is; paused time does not count toward the step
  resume    continue a paused rollout, or a rolled-back one from its step
  abort     back to legacy now: percent 0, every user pinned to legacy
  status    phase, step, time in step, every gate's value against its
            threshold and verdict, and the next action; without ROUTE one
            line per rollout. --watch redraws every --every until Ctrl-C.

Exit status of status (and of every command, for the state it leaves):
  0 progressing or done, 2 waiting (a manual promote, or a holding gate),
  3 paused, 4 rolled back, 5 not started; 1 the command itself failed.

Examples:
  ficus ctl rollout start products --reason "CAT-12: catalog rollout"
  ficus ctl rollout status products --watch
  ficus ctl rollout status products -o json | jq .state.gates
  ficus ctl rollout resume products --reason "CAT-14 fixed the 500s"`

func init() {
	ctlCommands["rollout"] = ctlCommand{
		synopsis: rolloutSynopsis,
		flags: func(fs *flag.FlagSet) {
			fs.String("reason", "", "why (required for start, promote, pause, resume, abort; recorded in the audit log)")
			fs.Bool("watch", false, "status: redraw until interrupted")
			fs.Duration("every", 2*time.Second, "status --watch: how often to redraw")
			fs.String("o", "table", "output: table or json")
		},
		run: runCtlRollout,
	}
}

func runCtlRollout(ctx context.Context, c *ctlConn, fs *flag.FlagSet, args []string, env *environment) error {
	format := fs.Lookup("o").Value.String()
	if format != "table" && format != "json" {
		return usageError{fmt.Errorf("-o %q: want table or json", format)}
	}
	if len(args) == 0 {
		return usageError{fmt.Errorf("usage: ficus ctl rollout start|status|promote|pause|resume|abort ROUTE (see ficus ctl rollout --help)")}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "status":
		if len(rest) > 1 {
			return usageError{fmt.Errorf("status takes at most one ROUTE")}
		}
		name := ""
		if len(rest) == 1 {
			name = rest[0]
		}
		if fs.Lookup("watch").Value.String() == "true" {
			every, _ := time.ParseDuration(fs.Lookup("every").Value.String())
			return watchRollout(ctx, c, name, format, max(every, 200*time.Millisecond), env)
		}
		code, err := showRollout(ctx, c, name, format, env)
		if err != nil {
			return err
		}
		return exitStatus(code)
	case admin.RolloutStart, admin.RolloutPromote, admin.RolloutPause, admin.RolloutResume, admin.RolloutAbort:
		if len(rest) != 1 {
			return usageError{fmt.Errorf("%s needs ROUTE, e.g. ficus ctl rollout %s products --reason \"...\"", cmd, cmd)}
		}
		reason := fs.Lookup("reason").Value.String()
		if reason == "" {
			return usageError{fmt.Errorf("%s changes the rollout: say why with --reason \"...\" (it goes into the audit log)", cmd)}
		}
		st, err := c.RolloutCommand(ctx, rest[0], cmd, reason)
		if err != nil {
			return err
		}
		if err := printRollout(st, format, env); err != nil {
			return err
		}
		return exitStatus(st.ExitCode)
	}
	return usageError{fmt.Errorf("unknown rollout command %q: want start, status, promote, pause, resume or abort", cmd)}
}

// showRollout prints one rollout (or all, name "") and returns the exit
// status its condition means (the worst of all when listing).
func showRollout(ctx context.Context, c *ctlConn, name, format string, env *environment) (int, error) {
	if name != "" {
		st, err := c.Rollout(ctx, name)
		if err != nil {
			return 1, err
		}
		return st.ExitCode, printRollout(st, format, env)
	}
	ss, err := c.Rollouts(ctx)
	if err != nil {
		return 1, err
	}
	code := 0
	for _, s := range ss {
		code = max(code, s.ExitCode)
	}
	if format == "json" {
		return code, writeJSON(env, ss)
	}
	return code, admin.RenderRollouts(env.stdout, ss)
}

func printRollout(st admin.RolloutStatus, format string, env *environment) error {
	if format == "json" {
		return writeJSON(env, st)
	}
	return admin.RenderRollout(env.stdout, st, time.Now())
}

func writeJSON(env *environment, v any) error {
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// watchRollout redraws the status until interrupted. The ctl command's
// time limit bounds each call, not the watch.
func watchRollout(ctx context.Context, c *ctlConn, name, format string, every time.Duration, env *environment) error {
	wctx, stop := signal.NotifyContext(context.WithoutCancel(ctx), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := 1
	for {
		cctx, cancel := context.WithTimeout(wctx, 10*time.Second)
		if format == "table" {
			fmt.Fprint(env.stdout, "\033[H\033[2J") // home and clear, then redraw
			fmt.Fprintf(env.stdout, "every %s, Ctrl-C to stop; %s\n\n", every, time.Now().Format(time.TimeOnly))
		}
		n, err := showRollout(cctx, c, name, format, env)
		cancel()
		if err != nil && wctx.Err() == nil {
			fmt.Fprintf(env.stderr, "%v\n", err)
		} else {
			code = n
		}
		select {
		case <-wctx.Done():
			return exitStatus(code)
		case <-time.After(every):
		}
	}
}

// exitStatus ends the command with code (nil for 0).
func exitStatus(code int) error {
	if code == 0 {
		return nil
	}
	return exitCodeError{code: code}
}
