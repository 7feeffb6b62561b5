package gateway

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"ferry.dev/ferry/internal/tooling/testkit"
)

// whoami backends answer with their name, so tests see where a stream went.
func whoami(name string) func(*net.TCPConn, *backend) {
	return func(c *net.TCPConn, _ *backend) { _, _ = c.Write([]byte(name)) }
}

func hit(t *testing.T, addr string) string {
	t.Helper()
	c := dial(t, addr)
	b, _ := readAll(t, c)
	c.Close()
	return string(b)
}

func TestLoadIsSpread(t *testing.T) {
	p := newPair(t, pairOpts{})
	a, b := newBackend(t, whoami("a")), newBackend(t, whoami("b"))
	p.export("web", nil, a.addr(), b.addr())
	addr := p.route(t, "web")
	seen := map[string]int{}
	for range 40 {
		seen[hit(t, addr)]++
	}
	if seen["a"] == 0 || seen["b"] == 0 || seen["a"]+seen["b"] != 40 {
		t.Fatalf("distribution %v", seen)
	}
}

func TestNotReadyEndpointAvoided(t *testing.T) {
	p := newPair(t, pairOpts{})
	a, b := newBackend(t, whoami("a")), newBackend(t, whoami("b"))
	p.export("web", nil, a.addr(), b.addr())
	addr := p.route(t, "web")
	for range 10 {
		hit(t, addr)
	}
	// a turns not-ready: the EndpointSlice drops it; the next streams avoid it.
	p.endpoints.Set("default", "web", 80, []string{b.addr()})
	before := a.accepted.Load()
	for range 20 {
		if got := hit(t, addr); got != "b" {
			t.Fatalf("stream went to %q after a turned not-ready", got)
		}
	}
	if a.accepted.Load() != before {
		t.Fatal("not-ready endpoint still received connections")
	}
}

func TestDeadEndpointRetriedElsewhere(t *testing.T) {
	p := newPair(t, pairOpts{})
	b := newBackend(t, whoami("b"))
	dead := deadAddr(t)
	p.export("web", nil, dead, b.addr())
	addr := p.route(t, "web")
	for i := range 20 {
		if got := hit(t, addr); got != "b" {
			t.Fatalf("stream %d got %q, want b (retried past the dead endpoint)", i, got)
		}
	}
	// The dead endpoint was tried at most once: after its failure it is in
	// backoff while a healthy one exists.
	if n := p.dialer.count(dead); n != 1 {
		t.Fatalf("dead endpoint dialed %d times, want 1", n)
	}
	if v := p.failed("default/web", ReasonDialFailed); v != 0 {
		t.Fatalf("retried streams counted as failed: %v", v)
	}
}

func TestNoReachableEndpoint(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.export("web", nil, deadAddr(t), deadAddr(t))
	p.export("empty", nil)
	for _, tc := range []struct{ svc, reason string }{{"web", ReasonDialFailed}, {"empty", ReasonNoEndpoints}} {
		addr := p.route(t, tc.svc)
		expectRefused(t, addr)
		testkit.EventuallyWithin(t, time.Second, tc.reason, func() bool { return p.failed("default/"+tc.svc, tc.reason) == 1 })
		if v := testutil.ToFloat64(p.egMetrics.EgressFailed.WithLabelValues("east", "unavailable")); v == 0 {
			t.Fatalf("egress did not count the remote's unavailable reply")
		}
	}
}

func TestBalancerBackoffUsesFailedWhenAloneAndExpires(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBalancer(func() time.Time { return now }, 5*time.Second)
	b.markFailed("a")
	if got, _ := b.pick([]string{"a", "b"}, nil); got != "b" {
		t.Fatalf("picked %q while a is backed off", got)
	}
	// A lone endpoint in backoff is still tried: a stale failure must not
	// make a Service unreachable.
	if got, ok := b.pick([]string{"a"}, nil); !ok || got != "a" {
		t.Fatalf("lone endpoint: %q %v", got, ok)
	}
	if _, ok := b.pick([]string{"a"}, []string{"a"}); ok {
		t.Fatal("picked an endpoint already tried")
	}
	now = now.Add(6 * time.Second)
	seen := map[string]bool{}
	for range 100 {
		got, _ := b.pick([]string{"a", "b"}, nil)
		seen[got] = true
	}
	if !seen["a"] {
		t.Fatal("a never picked after its backoff expired")
	}
	// Least loaded wins between two.
	b.acquire("a")
	b.acquire("a")
	for range 20 {
		if got, _ := b.pick([]string{"a", "b"}, nil); got != "b" {
			t.Fatal("p2c picked the busier endpoint")
		}
	}
	b.release("a")
	b.release("a")
	if len(b.active) != 0 {
		t.Fatalf("active map not pruned: %v", b.active)
	}
}

// expectRefused connects and expects the connection to be reset without a
// byte, which may already surface on connect when egress fails fast.
func expectRefused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n > 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read n=%d err=%v, want the connection refused", n, err)
	}
}
