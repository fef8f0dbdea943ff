package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
)

func init() {
	register("completion", command{
		summary: "print a shell completion script (bash, zsh or fish)",
		usage: `
Usage: ficus completion bash|zsh|fish

Prints a completion script for the shell: commands, ctl commands, and the
values of -o. Load it once per shell, or install it.

Examples:
  source <(ficus completion bash)
  ficus completion zsh > "${fpath[1]}/_ficus"
  ficus completion fish > ~/.config/fish/completions/ficus.fish
`,
		run: func(_ context.Context, args []string, env *environment) error {
			fs := newFlags("completion", env)
			if err := parse(fs, args); err != nil {
				return err
			}
			if fs.NArg() != 1 {
				return usageError{fmt.Errorf("name one shell: bash, zsh or fish")}
			}
			return writeCompletion(env.stdout, fs.Arg(0))
		},
	})
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func writeCompletion(w io.Writer, shell string) error {
	cmds := strings.Join(sortedKeys(commands), " ")
	ctl := strings.Join(sortedKeys(ctlCommands), " ")
	switch shell {
	case "bash":
		_, err := fmt.Fprintf(w, `# bash completion for ficus
_ficus() {
  local cur prev
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
    -o|--output) COMPREPLY=($(compgen -W "table json yaml" -- "$cur")); return ;;
    --log-level) COMPREPLY=($(compgen -W "debug info warn error" -- "$cur")); return ;;
    --config|--data) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "%s --help --version" -- "$cur")); return
  fi
  if [ "${COMP_WORDS[1]}" = ctl ]; then
    local i sub=""
    for ((i=2; i<COMP_CWORD; i++)); do
      case "${COMP_WORDS[i]}" in -*) ;; *) sub="${COMP_WORDS[i]}"; break ;; esac
    done
    if [ -z "$sub" ]; then COMPREPLY=($(compgen -W "%s" -- "$cur")); return; fi
  fi
  if [ "${COMP_WORDS[1]}" = completion ]; then COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")); fi
}
complete -o default -F _ficus ficus
`, cmds, ctl)
		return err
	case "zsh":
		_, err := fmt.Fprintf(w, `#compdef ficus
# zsh completion for ficus
_ficus() {
  local -a cmds ctl
  cmds=(%s)
  ctl=(%s)
  case $words[CURRENT-1] in
    -o|--output) compadd table json yaml; return ;;
    --log-level) compadd debug info warn error; return ;;
  esac
  if (( CURRENT == 2 )); then compadd -- $cmds --help --version; return; fi
  case $words[2] in
    ctl) if (( CURRENT == 3 )) || [[ $words[CURRENT-1] == --* && CURRENT == 5 ]]; then compadd -- $ctl; fi ;;
    completion) compadd bash zsh fish ;;
    *) _files ;;
  esac
}
compdef _ficus ficus
`, cmds, ctl)
		return err
	case "fish":
		var b strings.Builder
		b.WriteString("# fish completion for ficus\ncomplete -c ficus -f\n")
		for _, c := range sortedKeys(commands) {
			fmt.Fprintf(&b, "complete -c ficus -n __fish_use_subcommand -a %s -d %q\n", c, commands[c].summary)
		}
		for _, c := range sortedKeys(ctlCommands) {
			fmt.Fprintf(&b, "complete -c ficus -n '__fish_seen_subcommand_from ctl' -a %s -d %q\n", c, ctlCommands[c].synopsis)
		}
		b.WriteString("complete -c ficus -s o -l output -x -a 'table json yaml' -d 'output format'\n")
		b.WriteString("complete -c ficus -l log-level -x -a 'debug info warn error' -d 'log level'\n")
		b.WriteString("complete -c ficus -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	return usageError{fmt.Errorf("unknown shell %q: want bash, zsh or fish", shell)}
}
