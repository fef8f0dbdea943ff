// Package doctest runs the operator documentation as a script: the README's
// tour and the runbook in docs/operations.md are extracted from the
// Markdown (the shell blocks between <!-- NAME:begin --> and
// <!-- NAME:end -->), every command is run with bash against a real demo
// started from the binary built from this checkout, and the outputs an
// operator would look at are asserted. A doc that stops being true fails
// here, not in front of a new operator.
package doctest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/internal/ficusbin"
)

// ficusBin is built once by TestMain from this checkout.
var ficusBin string

func TestMain(m *testing.M) { ficusbin.Main(m, &ficusBin) }

// command is one logical shell command of a doc block.
type command struct {
	step string // the latest "# N. ..." comment above it, "" before any
	text string // continuation lines joined
	line int    // line in the Markdown file
}

// extract returns the commands of the ```sh blocks between
// <!-- name:begin --> and <!-- name:end --> markers (there may be several
// marked regions). It fails the test when there is none: a renamed marker
// must not turn the test into one that cannot fail.
func extract(t *testing.T, file, name string) []command {
	t.Helper()
	cmds, err := parseDoc(file, name)
	if err != nil {
		t.Fatal(err)
	}
	return cmds
}

func parseDoc(file, name string) ([]command, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var (
		cmds           []command
		inRegion, inSh bool
		regions        int
		step, cont     string
		contLine       int
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case strings.TrimSpace(l) == "<!-- "+name+":begin -->":
			inRegion = true
			regions++
			continue
		case strings.TrimSpace(l) == "<!-- "+name+":end -->":
			inRegion = false
			continue
		}
		if !inRegion {
			continue
		}
		if !inSh {
			inSh = strings.TrimSpace(l) == "```sh"
			continue
		}
		if strings.TrimSpace(l) == "```" {
			inSh = false
			continue
		}
		if cont == "" {
			trimmed := strings.TrimSpace(l)
			if trimmed == "" {
				continue
			}
			if strings.HasPrefix(trimmed, "#") {
				if m := regexp.MustCompile(`^#\s*(\d+\.)`).FindStringSubmatch(trimmed); m != nil {
					step = trimmed
				}
				continue
			}
			contLine = n
		}
		if s, ok := strings.CutSuffix(l, `\`); ok {
			cont += s + " "
			continue
		}
		cmds = append(cmds, command{step: step, text: cont + l, line: contLine})
		cont = ""
	}
	if regions == 0 || len(cmds) == 0 {
		return nil, fmt.Errorf("%s has no runnable block between <!-- %s:begin --> and <!-- %s:end -->", file, name, name)
	}
	return cmds, nil
}

// demoPorts are the demo's fixed ports that the docs name.
var demoPorts = []int{8080, 8081, 8082, 8083, 8084, 8085, 8086, 8087, 8090}

// freeOffset finds a port offset at which every demo port is free, so the
// test never depends on (or disturbs) whatever holds 8080 on this machine.
func freeOffset(t *testing.T) int {
	t.Helper()
	for range 50 {
		// Below the kernel's ephemeral range (32768 and up), so that no
		// outgoing connection of another test takes a port between this
		// check and the demo's listen.
		off := 10000 + 100*rand.IntN(140)
		free := true
		for _, p := range demoPorts {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+off))
			if err != nil {
				free = false
				break
			}
			_ = ln.Close()
		}
		if free {
			return off
		}
	}
	t.Fatal("no free port offset for the demo's ports")
	return 0
}

// demo is a running `ficus demo` with its own data directory, its ports
// moved by off.
type demo struct {
	t    *testing.T
	dir  string // the working directory of the doc's commands (./bin/ficus is the binary)
	off  int
	cmd  *exec.Cmd
	done chan struct{}
	out  string // the demo's terminal (stdout and stderr)
}

func startDemo(t *testing.T, extra ...string) *demo {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ficusBin, filepath.Join(dir, "bin", "ficus")); err != nil {
		t.Fatal(err)
	}
	d := &demo{t: t, dir: dir, off: freeOffset(t), out: filepath.Join(dir, "demo-terminal.txt"), done: make(chan struct{})}
	f, err := os.Create(d.out)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"demo", "--data", "data", "--port-offset", strconv.Itoa(d.off)}, extra...)
	d.cmd = exec.Command(ficusBin, args...)
	d.cmd.Dir, d.cmd.Stdout, d.cmd.Stderr = dir, f, f
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); _ = f.Close(); close(d.done) }()
	t.Cleanup(d.stop)
	ready := fmt.Sprintf("http://127.0.0.1:%d/readyz", 8090+d.off)
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := c.Get(ready)
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return d
			}
		}
		select {
		case <-d.done:
			t.Fatalf("the demo exited during start-up:\n%s", d.terminal())
		case <-time.After(100 * time.Millisecond): // readiness polling interval
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo was not ready within 60s:\n%s", d.terminal())
		}
	}
}

func (d *demo) terminal() string {
	b, _ := os.ReadFile(d.out)
	return string(b)
}

// stop interrupts the demo as Ctrl-C would and waits (bounded) for it.
func (d *demo) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
		d.t.Errorf("the demo did not stop within 30s of an interrupt")
	}
}

var loopbackPort = regexp.MustCompile(`127\.0\.0\.1:(8\d\d\d)\b`)

// rewrite moves the doc's demo ports by the demo's offset, and points
// ficus ctl (whose defaults are the demo's ports) at them.
func (d *demo) rewrite(cmd string) string {
	cmd = loopbackPort.ReplaceAllStringFunc(cmd, func(s string) string {
		p, _ := strconv.Atoi(s[len("127.0.0.1:"):])
		return "127.0.0.1:" + strconv.Itoa(p+d.off)
	})
	at := func(p int) string { return "http://127.0.0.1:" + strconv.Itoa(p+d.off) }
	cmd = strings.ReplaceAll(cmd, "ficus ctl reconcile", fmt.Sprintf("ficus ctl reconcile --legacy %s --catalog %s --orders %s", at(8081), at(8082), at(8083)))
	return strings.ReplaceAll(cmd, "ficus ctl ", "ficus ctl --admin "+at(8090)+" ")
}

// result is one command's outcome.
type result struct {
	command
	run  string // the command as run (ports moved)
	out  string // stdout and stderr
	code int
}

// runAll runs each command with bash (-o pipefail) in the demo's working
// directory, exports carried to later commands, each bounded by a minute.
func (d *demo) runAll(cmds []command) []result {
	var exports []string
	var out []result
	for _, c := range cmds {
		run := d.rewrite(c.text)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		sh := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", strings.Join(append(exports, run), "\n"))
		sh.Dir = d.dir
		b, err := sh.CombinedOutput()
		cancel()
		code := 0
		if err != nil {
			code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
		}
		if strings.HasPrefix(strings.TrimSpace(c.text), "export ") {
			exports = append(exports, c.text)
		}
		out = append(out, result{command: c, run: run, out: string(b), code: code})
	}
	return out
}

// find returns the results whose command contains every part, in order.
func find(t *testing.T, rs []result, parts ...string) []result {
	t.Helper()
	var out []result
	for _, r := range rs {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(r.text, p)
		}
		if ok {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no command of the doc contains %q: the doc changed; update this test with it", parts)
	}
	return out
}

// expect checks that r's output matches every pattern.
func expect(t *testing.T, r result, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(r.out) {
			t.Errorf("line %d %s\n$ %s\nexit %d; output does not match %q:\n%s", r.line, r.step, r.text, r.code, p, r.out)
		}
	}
}

// everyExitsZero fails for each command that exited non-zero, except the
// ones listed (by a part of their text).
func everyExitsZero(t *testing.T, rs []result) {
	t.Helper()
	for _, r := range rs {
		if r.code != 0 {
			t.Errorf("line %d %s\n$ %s\nexited %d:\n%s", r.line, r.step, r.run, r.code, r.out)
		}
	}
}
