// Command schemacheck checks Grafana dashboard JSON files with
// dashboards.CheckSchema (grafana-foundation-sdk's strict schema plus
// Ficus's own rules) and prints every problem.
//
//	go run ./dashboards/schemacheck dashboards/grafana/*.json
//	go run ./dashboards/schemacheck --expect-fail dashboards/testdata/seeded/*.json
//
// Exit status 0 when every file is clean (with --expect-fail: when every
// file has at least one problem), 1 otherwise, 2 on bad usage.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ficus-gw/ficus/dashboards"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("schemacheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	expectFail := fs.Bool("expect-fail", false, "self-test: every file must have a problem (the seeded mistakes)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "schemacheck: no files given")
		return 2
	}
	bad := 0
	for _, f := range fs.Args() {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "schemacheck: %v\n", err)
			return 1
		}
		errs := dashboards.CheckSchema(b)
		switch {
		case *expectFail && len(errs) == 0:
			fmt.Fprintf(stdout, "FAIL %s: the seeded mistake was not caught\n", f)
			bad++
		case *expectFail:
			fmt.Fprintf(stdout, "PASS %s: caught: %v\n", f, errs[0])
		case len(errs) > 0:
			for _, e := range errs {
				fmt.Fprintf(stdout, "FAIL %s: %v\n", f, e)
			}
			bad++
		default:
			fmt.Fprintf(stdout, "PASS %s\n", f)
		}
	}
	if bad > 0 {
		return 1
	}
	return 0
}
