package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ficus-gw/ficus/gateway/admin"
)

func init() {
	ctlCommands["reload"] = ctlCommand{
		synopsis: "reload [-o table|json|yaml]",
		flags:    addOutputFlag,
		run: func(ctx context.Context, c *ctlConn, fs *flag.FlagSet, args []string, env *environment) error {
			if len(args) != 0 {
				return usageError{fmt.Errorf("reload takes no arguments")}
			}
			format, err := outputFormat(fs)
			if err != nil {
				return err
			}
			res, err := c.Reload(ctx)
			if err != nil {
				return err
			}
			return writeOutput(env.stdout, format, res, func(w io.Writer) error { return renderReload(w, res) })
		},
	}
}

func renderReload(w io.Writer, res admin.ReloadResult) error {
	if len(res.Changed) == 0 {
		_, err := fmt.Fprintln(w, "reloaded: the file matches the running configuration, nothing changed")
		return err
	}
	_, err := fmt.Fprintf(w, "reloaded (sha256 %.12s), changed:\n  %s\n", res.SHA256, strings.Join(res.Changed, "\n  "))
	return err
}
