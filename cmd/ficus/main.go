// Command ficus is the strangler-fig gateway and everything its demo needs:
// the legacy shop, the new Catalog and Order services, the gateway itself and
// the operator's CLI, as subcommands of one binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one subcommand.
type command struct {
	summary string
	// usage is printed by --help: the synopsis, what it does, and an example.
	usage string
	run   func(ctx context.Context, args []string, env *environment) error
}

var commands = map[string]command{}

func register(name string, c command) { commands[name] = c }

// environment is what every subcommand gets: where to write and how to log.
type environment struct {
	stdout, stderr io.Writer
	logLevel       *slog.LevelVar
	logFormat      string
	// files, when set, writes each component's logs to its own file and
	// only warnings and errors to stderr (the demo).
	files *demoLogs
}

func (e *environment) logger() *slog.Logger {
	if e.files != nil {
		return e.files.Logger()
	}
	opts := &slog.HandlerOptions{Level: e.logLevel}
	if e.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and maps its outcome to an exit status:
// 0 success, 1 failure, 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	env := &environment{stdout: stdout, stderr: stderr, logLevel: new(slog.LevelVar), logFormat: "text"}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printOverview(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" || args[0] == "-v" {
		fmt.Fprintf(stdout, "ficus %s\n", version)
		return 0
	}
	name := args[0]
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "ficus: unknown command %q\nRun 'ficus --help' for the list of commands.\n", name)
		return 2
	}
	err := cmd.run(ctx, args[1:], env)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "ficus %s: %v\nRun 'ficus %s --help' for usage.\n", name, err, name)
		return 2
	default:
		var ec exitCodeError
		if errors.As(err, &ec) {
			if ec.msg != "" {
				fmt.Fprintf(stderr, "ficus %s: %s\n", name, ec.msg)
			}
			return ec.code
		}
		fmt.Fprintf(stderr, "ficus %s: %v\n", name, err)
		return 1
	}
}

func printOverview(w io.Writer) {
	fmt.Fprintf(w, "ficus %s — a strangler-fig API gateway\n\nUsage: ficus <command> [flags]\n\nCommands:\n", version)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'ficus <command> --help' for a command's flags and an example; 'ficus --version' for the version.\n")
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ error }

// exitCodeError ends a command with a chosen exit status.
type exitCodeError struct {
	code int
	msg  string
}

func (e exitCodeError) Error() string { return e.msg }

// newFlags returns a flag set whose --help prints the command's usage, and
// which also takes the logging flags every command shares.
func newFlags(name string, env *environment) *flag.FlagSet {
	fs := flag.NewFlagSet("ficus "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprint(env.stdout, strings.TrimLeft(commands[name].usage, "\n"))
		fmt.Fprintln(env.stdout, "\nFlags:")
		fs.SetOutput(env.stdout)
		fs.PrintDefaults()
		fs.SetOutput(env.stderr)
	}
	fs.Func("log-level", "log level: debug, info, warn, error (default info)", func(s string) error {
		return env.logLevel.UnmarshalText([]byte(s))
	})
	fs.StringVar(&env.logFormat, "log-format", "text", "log format: text or json")
	return fs
}

// parse parses args, turning flag errors into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

func init() {
	register("version", command{
		summary: "print the version",
		usage: `
Usage: ficus version   (or: ficus --version)

Prints the build version.

Example:
  ficus version
  ficus --version
`,
		run: func(_ context.Context, args []string, env *environment) error {
			fs := newFlags("version", env)
			if err := parse(fs, args); err != nil {
				return err
			}
			fmt.Fprintf(env.stdout, "ficus %s\n", version)
			return nil
		},
	})
}
