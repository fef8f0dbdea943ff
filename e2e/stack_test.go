package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ficus-gw/ficus/internal/faultproxy"
	"github.com/ficus-gw/ficus/internal/ficusbin"
)

// ficusBin is the binary every process of a stack runs, built once by
// TestMain from this checkout.
var ficusBin string

func TestMain(m *testing.M) { ficusbin.Main(m, &ficusBin) }

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// proc is one component running as its own process, so that a test can
// kill it with SIGKILL exactly as an operator's crash would.
type proc struct {
	t     *testing.T
	name  string
	args  []string
	probe string // URL answered (any status) once the process serves
	log   string
	cmd   *exec.Cmd
	done  chan struct{}
}

// start starts the process (unless it runs) and waits until it serves.
func (p *proc) start() {
	p.t.Helper()
	if p.cmd != nil {
		return
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(ficusBin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		p.t.Fatalf("starting %s: %v", p.name, err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); _ = f.Close(); close(p.done) }()
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := c.Get(p.probe)
		if err == nil {
			_ = res.Body.Close()
			return
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s exited during start-up; its log:\n%s", p.name, tail(p.log))
		case <-time.After(50 * time.Millisecond): // polling interval of the readiness probe
		}
		if time.Now().After(deadline) {
			p.kill()
			p.t.Fatalf("%s did not serve %s within 30s; its log:\n%s", p.name, p.probe, tail(p.log))
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// stop asks the process to stop (SIGTERM) and kills it after 15s.
func (p *proc) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	p.cmd = nil
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stack is the whole migration on loopback, each component its own
// process: legacy, catalog, orders (with the dual-run sync), the ACL
// backend and the gateway. The gateway reaches the order service and the
// ACL backend through fault proxies.
type stack struct {
	t                       *testing.T
	dir                     string
	legacy, catalog, orders *proc
	acl, gateway            *proc
	legacyURL, catalogURL   string
	ordersURL, aclURL       string
	publicURL, adminURL     string // replica 0's
	gateways                []*proc
	publicURLs              []string
	ordersProxy, aclProxy   *faultproxy.Proxy
	catalogProxy            *faultproxy.Proxy // between the order service and the catalog
	token                   string
	http                    *http.Client
}

type stackOptions struct {
	// affinity turns write affinity on for the orders route (the fix
	// under test); off shows what happens without it.
	affinity bool
}

const adminToken = "e2e-operator-token"

// leaseForTests is the order service's idempotency lease in these tests.
const leaseForTests = 3 * time.Second

func startStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	dir := t.TempDir()
	s := &stack{t: t, dir: dir, token: adminToken, http: &http.Client{Timeout: 15 * time.Second}}
	la, ca, oa, aa := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	s.legacyURL, s.catalogURL, s.ordersURL, s.aclURL = "http://"+la, "http://"+ca, "http://"+oa, "http://"+aa
	newProc := func(name, probe string, args ...string) *proc {
		return &proc{t: t, name: name, args: args, probe: probe, log: filepath.Join(dir, name+".log")}
	}
	s.legacy = newProc("legacy", s.legacyURL+"/shop/catalog.do", "legacy", "--listen", la, "--db", filepath.Join(dir, "legacy.db"))
	s.catalog = newProc("catalog", s.catalogURL+"/openapi.yaml", "catalog", "--listen", ca, "--db", filepath.Join(dir, "catalog.db"))
	var err error
	if s.catalogProxy, err = faultproxy.New(ca, 13); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.catalogProxy.Close() })
	s.orders = newProc("orders", s.ordersURL+"/openapi.yaml", "orders", "--listen", oa, "--db", filepath.Join(dir, "orders.db"),
		"--catalog", s.catalogProxy.URL(), "--legacy", s.legacyURL, "--sync-db", filepath.Join(dir, "sync.db"),
		// A short lease, so that claims a kill -9 leaves behind are
		// repaired within the test.
		"--idempotency-lease", leaseForTests.String())
	s.acl = newProc("acl", s.aclURL+"/openapi.yaml", "acl", "--listen", aa, "--legacy", s.legacyURL, "--db", filepath.Join(dir, "acl.db"))
	for _, p := range []*proc{s.legacy, s.catalog, s.orders, s.acl} {
		p.start()
		t.Cleanup(p.stop)
	}
	if s.ordersProxy, err = faultproxy.New(oa, 11); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.ordersProxy.Close() })
	if s.aclProxy, err = faultproxy.New(aa, 12); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.aclProxy.Close() })

	// Two gateway replicas share the control plane (its SQLite file) and
	// the intent ledger: an operator's change reaches the second one up to
	// a sync interval later, so for a moment they decide differently.
	for i := range 2 {
		pa, ada := freeAddr(t), freeAddr(t)
		affinity := ""
		if o.affinity {
			affinity = "\n    affinity: {header: Idempotency-Key, ttl: 48h}"
		}
		cfg := fmt.Sprintf(`listen: %s
admin:
  listen: %s
  auditDB: %s
  tokens:
    - {name: e2e, value: %s, scopes: [read, write]}
upstreams:
  legacy: {url: %s, kind: legacy}
  catalog: {url: %s, kind: new, timeout: 2s}
  orders:
    url: %s
    kind: new
    timeout: 1500ms
    breaker: {window: 5s, openFor: 500ms}
  acl:
    url: %s
    kind: acl
    timeout: 1500ms
    breaker: {window: 5s, openFor: 500ms}
routes:
  - {name: products, path: /api/v1/products/*, methods: [GET, HEAD], legacy: acl, new: catalog}
  - name: orders
    path: /api/v1/orders/*
    legacy: acl
    new: orders
    canary: 0
    bufferResponses: true%s
shadow: {db: %s}
retire: {db: %s}
intents: {db: %s}
`, pa, ada, filepath.Join(dir, "controlplane.db"), adminToken, s.legacyURL, s.catalogURL, s.ordersProxy.URL(), s.aclProxy.URL(),
			affinity, filepath.Join(dir, fmt.Sprintf("shadow-%d.db", i)), filepath.Join(dir, fmt.Sprintf("retire-%d.db", i)),
			filepath.Join(dir, "intents.db"))
		cfgPath := filepath.Join(dir, fmt.Sprintf("ficus-%d.yaml", i))
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		gw := newProc(fmt.Sprintf("gateway-%d", i), "http://"+ada+"/readyz", "gateway", "--config", cfgPath)
		gw.start()
		t.Cleanup(gw.stop)
		s.gateways = append(s.gateways, gw)
		s.publicURLs = append(s.publicURLs, "http://"+pa)
		if i == 0 {
			s.gateway, s.publicURL, s.adminURL = gw, "http://"+pa, "http://"+ada
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range []*proc{s.gateway, s.orders, s.acl} {
				t.Logf("%s log (tail):\n%s", p.name, tail(p.log))
			}
		}
	})
	return s
}

// ctl runs `ficus ctl` against the stack's gateway, as an operator would.
func (s *stack) ctl(args ...string) string {
	s.t.Helper()
	full := append([]string{"ctl", "--admin", s.adminURL, "--token", s.token}, args...)
	out, err := exec.Command(ficusBin, full...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("ficus %s: %v\n%s", strings.Join(full, " "), err, out)
	}
	return string(out)
}

func (s *stack) canary(pct int) {
	s.ctl("canary", "orders", fmt.Sprint(pct), "--reason", "e2e: canary move")
}

// answer is what a client saw for one attempt.
type answer struct {
	status   int
	backend  string
	fallback string
	code     string // the structured error's code
	orderID  string
	err      error
}

// placeOrder sends one attempt of an order through gateway replica 0.
func (s *stack) placeOrder(key, user string, body []byte) answer {
	return s.placeOrderVia(0, key, user, body)
}

// placeOrderVia sends one attempt of an order through gateway replica i.
func (s *stack) placeOrderVia(i int, key, user string, body []byte) answer {
	req, err := http.NewRequest(http.MethodPost, s.publicURLs[i]+"/api/v1/orders", bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("X-User-Id", user)
	res, err := s.http.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, backend: res.Header.Get("X-Ficus-Backend"), fallback: res.Header.Get("X-Ficus-Fallback"), err: err}
	var v struct {
		ID   string `json:"orderId"`
		Code string `json:"code"`
	}
	_ = json.Unmarshal(b, &v)
	a.orderID, a.code = v.ID, v.Code
	return a
}

// customerOrders lists every orderId of a customer on one side: the order
// service directly, or the legacy through the ACL backend.
func (s *stack) customerOrders(base, customer string) (map[string]bool, error) {
	ids := map[string]bool{}
	cursor := ""
	for range 1000 {
		u := base + "/api/v1/orders?limit=100&customerId=" + customer
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		res, err := s.http.Get(u)
		if err != nil {
			return nil, err
		}
		var page struct {
			Items []struct {
				ID string `json:"orderId"`
			} `json:"items"`
			NextCursor *string `json:"nextCursor"`
		}
		err = json.NewDecoder(res.Body).Decode(&page)
		_ = res.Body.Close()
		if err != nil || res.StatusCode != 200 {
			return nil, fmt.Errorf("listing orders of %s at %s: status %d, %v", customer, base, res.StatusCode, err)
		}
		for _, it := range page.Items {
			ids[it.ID] = true
		}
		if page.NextCursor == nil || *page.NextCursor == "" {
			return ids, nil
		}
		cursor = *page.NextCursor
	}
	return nil, fmt.Errorf("listing orders of %s: too many pages", customer)
}

// settle waits (bounded) until both stores hold the same orders of the
// customer and returns them: the dual-run sync has caught up.
func (s *stack) settle(customer string) (newSide, legacySide map[string]bool) {
	s.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var err error
	for {
		newSide, err = s.customerOrders(s.ordersURL, customer)
		if err == nil {
			legacySide, err = s.customerOrders(s.aclURL, customer)
		}
		if err == nil && sameSet(newSide, legacySide) {
			return newSide, legacySide
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the stores did not converge within 90s for customer %s: new %d orders, legacy %d, err %v\nonly new: %v\nonly legacy: %v",
				customer, len(newSide), len(legacySide), err, minus(newSide, legacySide), minus(legacySide, newSide))
		}
		time.Sleep(200 * time.Millisecond) // polling interval while the sync catches up
	}
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func minus(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	return out
}

// getJSON decodes the 200 answer of a GET.
func (s *stack) getJSON(u string, v any) error {
	res, err := s.http.Get(u)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", u, res.StatusCode)
	}
	return json.NewDecoder(res.Body).Decode(v)
}
