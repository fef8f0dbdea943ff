package order

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// childEnv makes the test binary run an order service instead of the tests
// (see TestMain), configured by the childDB, childCatalog and childLease
// variables; it prints "listening <api addr> <metrics addr>" and serves
// until killed.
const (
	childEnv     = "FICUS_ORDER_TEST_CHILD"
	childDB      = "FICUS_ORDER_TEST_DB"
	childCatalog = "FICUS_ORDER_TEST_CATALOG"
	childLease   = "FICUS_ORDER_TEST_LEASE"
)

func runChild() int {
	lease, err := time.ParseDuration(os.Getenv(childLease))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	reg := prometheus.NewRegistry()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	svc, err := Open(ctx, Config{
		DBPath: os.Getenv(childDB), CatalogURL: os.Getenv(childCatalog), CatalogTimeout: 10 * time.Second,
		IdempotencyLease: lease, SweepInterval: 100 * time.Millisecond, RatePerSecond: -1, Metrics: reg,
	}, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	go func() { _ = svc.App().Listener(api) }()
	go func() { _ = http.Serve(mln, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})) }()
	fmt.Printf("listening %s %s\n", api.Addr(), mln.Addr())
	_ = svc.Run(ctx)
	_ = svc.Close()
	return 0
}

// child is an order service in another process.
type child struct {
	cmd      *exec.Cmd
	api, met string
}

func startChild(t *testing.T, dbPath, catalogURL string, lease time.Duration) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childDB+"="+dbPath, childCatalog+"="+catalogURL, childLease+"="+lease.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case s := <-line:
		f := strings.Fields(s)
		if len(f) != 3 || f[0] != "listening" {
			t.Fatalf("child said %q", s)
		}
		c.api, c.met = "http://"+f[1], "http://"+f[2]
	case <-time.After(30 * time.Second):
		t.Fatal("child order service did not start")
	}
	return c
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
}

// metric reads one series from the child's /metrics.
func (c *child) metric(t *testing.T, series string) float64 {
	t.Helper()
	res, err := http.Get(c.met + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func post(t *testing.T, url, key, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	res, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// The order service is killed with SIGKILL after the Catalog applied its
// reservation and before it could book the order. On restart (same database)
// the sweeper resolves the claim the dead process left, releases the
// reservation and counts the repair; the client's retry of the key after the
// lease books exactly one order and takes the stock once.
func TestKillDashNineMidOrderLeavesNoOrphan(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	t.Parallel()
	cat := startCatalog(t)
	cat.seed("A", 500, 10)
	proxy := newFaultProxy(t, cat.url)
	db := filepath.Join(t.TempDir(), "orders.db")
	const lease = 3 * time.Second
	body := orderBody("hank", "A", 4)

	first := startChild(t, db, proxy.srv.URL, lease)
	proxy.arm("lose") // the Catalog applies the reservation; the answer is held
	placed := make(chan struct{})
	go func() {
		defer close(placed)
		req, _ := http.NewRequest(http.MethodPost, first.api+"/api/v1/orders", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "kill-1")
		if res, err := (&http.Client{Timeout: 20 * time.Second}).Do(req); err == nil {
			res.Body.Close() // the process dies: an error is expected
		}
	}()
	waitHit(t, proxy)
	first.kill(t)
	<-placed
	if s := cat.stock("A"); s != 6 {
		t.Fatalf("stock %d after the kill, want 6 (the dead order's reservation)", s)
	}

	second := startChild(t, db, proxy.srv.URL, lease)
	deadline := time.Now().Add(lease + 15*time.Second)
	for cat.stock("A") != 10 {
		if time.Now().After(deadline) {
			t.Fatalf("stock still %d: the dead order's reservation was never released", cat.stock("A"))
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
	if v := second.metric(t, `ficus_order_repairs_total{kind="claim_released"}`); v != 1 {
		t.Fatalf(`ficus_order_repairs_total{kind="claim_released"} = %v, want 1`, v)
	}
	if open := cat.openReservations(); len(open) != 0 {
		t.Fatalf("open reservations after the repair: %+v", open)
	}

	status, res := post(t, second.api+"/api/v1/orders", "kill-1", body)
	if status != http.StatusCreated {
		t.Fatalf("retry after the repair: %d %s", status, res)
	}
	again, res2 := post(t, second.api+"/api/v1/orders", "kill-1", body)
	if again != http.StatusCreated || res2 != res {
		t.Fatalf("second retry: %d %s, want the first answer replayed", again, res2)
	}
	if s := cat.stock("A"); s != 6 {
		t.Fatalf("stock %d after the retry, want 6 (reserved once)", s)
	}
	lr, err := http.Get(second.api + "/api/v1/orders?customerId=hank")
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Body.Close()
	list, _ := io.ReadAll(lr.Body)
	if n := strings.Count(string(list), `"orderId"`); n != 1 {
		t.Fatalf("%d orders for the key, want 1: %s", n, list)
	}
}
