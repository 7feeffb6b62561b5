package gateway

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/tooling/testkit"
	"ferry.dev/ferry/internal/tunnel"
)

func TestEndToEndClientHalfClosesFirst(t *testing.T) {
	p := newPair(t, pairOpts{})
	be := newBackend(t, echo)
	p.export("echo", nil, be.addr())
	c := dial(t, p.route(t, "echo"))

	msg := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	go func() {
		_, _ = c.Write(msg)
		// Client FIN → stream FIN → backend CloseWrite'd: the echo backend
		// only finishes (and half-closes back) once it reads EOF.
		_ = c.CloseWrite()
	}()
	got, err := readAll(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("got %d bytes back, want %d", len(got), len(msg))
	}
	testkit.EventuallyWithin(t, 2*time.Second, "ingress metrics", func() bool {
		return testutil.ToFloat64(p.inMetrics.IngressBytes.WithLabelValues("from_backend", "west", "default/echo")) == float64(len(msg))
	})
	// The stream rode the pool's first session. The second is dialed in the
	// background, after the first, and ingress counts a session only once
	// its yamux server is up, which may be after the client's first ping was
	// answered: wait for both, then check there are no more than the pool's
	// two.
	testkit.Eventually(t, "2 inbound sessions counted", func() bool {
		return testutil.ToFloat64(p.inMetrics.InboundSessions.WithLabelValues("west")) >= 2
	})
	checks := map[string]float64{
		"ingress opened":  testutil.ToFloat64(p.inMetrics.IngressOpened.WithLabelValues("west", "default/echo")),
		"egress opened":   testutil.ToFloat64(p.egMetrics.EgressOpened.WithLabelValues("east", "default/echo")),
		"to backend":      testutil.ToFloat64(p.inMetrics.IngressBytes.WithLabelValues("to_backend", "west", "default/echo")),
		"egress to":       testutil.ToFloat64(p.egMetrics.EgressBytes.WithLabelValues("to_remote", "east", "default/echo")),
		"egress from":     testutil.ToFloat64(p.egMetrics.EgressBytes.WithLabelValues("from_remote", "east", "default/echo")),
		"remote up":       testutil.ToFloat64(p.egMetrics.RemoteUp.WithLabelValues("east")),
		"inbound session": testutil.ToFloat64(p.inMetrics.InboundSessions.WithLabelValues("west")),
	}
	want := map[string]float64{
		"ingress opened": 1, "egress opened": 1, "to backend": float64(len(msg)),
		"egress to": float64(len(msg)), "egress from": float64(len(msg)), "remote up": 1, "inbound session": 2,
	}
	for k, v := range want {
		if checks[k] != v {
			t.Errorf("%s = %v, want %v", k, checks[k], v)
		}
	}
	if n := testutil.CollectAndCount(p.inMetrics.BackendTTFB); n != 1 {
		t.Errorf("ttfb series = %d, want 1", n)
	}
}

func TestEndToEndBackendHalfClosesFirst(t *testing.T) {
	p := newPair(t, pairOpts{})
	received := make(chan []byte, 1)
	be := newBackend(t, func(c *net.TCPConn, b *backend) {
		_, _ = c.Write([]byte("banner"))
		_ = c.CloseWrite() // backend FIN first
		data, _ := io.ReadAll(c)
		b.bytes.Add(int64(len(data)))
		received <- data
	})
	p.export("banner", nil, be.addr())
	c := dial(t, p.route(t, "banner"))

	// The client sees the banner and then EOF...
	buf := make([]byte, 6)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "banner" {
		t.Fatalf("banner: %q %v", buf, err)
	}
	if n, err := c.Read(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("after banner: n=%d err=%v, want EOF", n, err)
	}
	// ...and can still send, through the half-closed tunnel, to the backend.
	msg := bytes.Repeat([]byte("after-fin "), 50_000)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = c.CloseWrite()
	select {
	case got := <-received:
		if !bytes.Equal(got, msg) {
			t.Fatalf("backend got %d bytes, want %d", len(got), len(msg))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("backend never saw the client's EOF")
	}
}

func TestThousandConcurrentStreamsOnePooledSession(t *testing.T) {
	// Deadlines are about liveness, not speed: 1000 streams opening at once
	// under the race detector on two cores can take seconds.
	lim := testLimits()
	lim.HeaderTimeout = 20 * time.Second
	lim.OpenTimeout = 20 * time.Second
	lim.DialTimeout = 10 * time.Second
	lim.Tunnel.StreamOpenTimeout = 20 * time.Second
	lim.Tunnel.KeepAliveTimeout = 20 * time.Second // also the frame-write timeout
	// Stream memory for 1000 served streams and their half-open slack.
	lim.Tunnel.MaxCallerStreamMemory = 2 * 1000 * int64(lim.Tunnel.MaxStreamWindow)
	lim.Tunnel.MaxTotalStreamMemory = lim.Tunnel.MaxCallerStreamMemory
	p := newPair(t, pairOpts{poolSize: 1, inLimits: lim, egLimits: lim})
	be := newBackend(t, echo)
	p.export("echo", nil, be.addr())
	addr := p.route(t, "echo")

	const n = 1000
	var connected, wg sync.WaitGroup
	connected.Add(n)
	release := make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 20*time.Second)
			if err != nil {
				connected.Done()
				errs <- err
				return
			}
			defer c.Close()
			msg := []byte{'x', byte(i), byte(i >> 8)}
			_, err = c.Write(msg)
			buf := make([]byte, 3)
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			if err == nil {
				_, err = io.ReadFull(c, buf) // the stream is established end to end
			}
			connected.Done()
			if err != nil || !bytes.Equal(buf, msg) {
				errs <- err
				return
			}
			<-release // hold all 1000 open at once
			_ = c.(*net.TCPConn).CloseWrite()
			if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
				errs <- err
			}
		}()
	}
	connected.Wait()
	active := p.in.ActiveStreams()
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("stream failed: %v\n%s", err, p.failureCounters())
	}
	if active != n {
		t.Fatalf("%d streams active at once, want %d", active, n)
	}
	if s := testutil.ToFloat64(p.inMetrics.InboundSessions.WithLabelValues("west")); s != 1 {
		t.Fatalf("ingress saw %v sessions, want 1", s)
	}
	if got := be.accepted.Load(); got != n {
		t.Fatalf("backend accepted %d, want %d", got, n)
	}
}

func TestRoutesAndRemotesChangeLive(t *testing.T) {
	p := newPair(t, pairOpts{})
	one := newBackend(t, func(c *net.TCPConn, _ *backend) { _, _ = c.Write([]byte("one")) })
	two := newBackend(t, func(c *net.TCPConn, _ *backend) { _, _ = c.Write([]byte("two")) })
	p.export("one", nil, one.addr())
	p.export("two", nil, two.addr())
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	set := func(svc string) {
		t.Helper()
		if err := p.eg.SetRoutes([]Route{{Port: port, Namespace: "default", Destinations: []Destination{{Cluster: "east", Target: tunnel.Target{Namespace: "default", Service: svc, Port: 80}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	get := func() string {
		t.Helper()
		b, _ := readAll(t, dial(t, addr))
		return string(b)
	}
	set("one")
	if got := get(); got != "one" {
		t.Fatalf("got %q", got)
	}
	set("two") // same port, new target, no restart
	if got := get(); got != "two" {
		t.Fatalf("after re-route got %q", got)
	}
	// The remote moves to a new address (a second ingress on another port).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.in.Serve(t.Context(), ln) }()
	p.eg.SetRemotes(map[string]tunnel.Remote{"east": {Addresses: []string{ln.Addr().String()}, Identity: p.east.GatewayID()}})
	if got := get(); got != "two" {
		t.Fatalf("after remote change got %q", got)
	}
	// Removing the route closes the port.
	if err := p.eg.SetRoutes(nil); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("egress port still open after its route was removed")
	}
	// Removing the remote makes new connections fail fast.
	set("two")
	p.eg.SetRemotes(nil)
	// The client sees a reset, possibly already on connect.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		b, _ := readAll(t, c)
		c.Close()
		if len(b) > 0 {
			t.Fatalf("read %q through a removed remote", b)
		}
	}
	testkit.EventuallyWithin(t, time.Second, "unknown_remote counted", func() bool {
		return testutil.ToFloat64(p.egMetrics.EgressFailed.WithLabelValues("east", ReasonUnknownRemote)) == 1
	})
}

// A clusterset-style route fails over to the next destination while nothing
// has been sent: a remote that is down, or one without ready endpoints.
func TestRouteFailsOverAcrossDestinations(t *testing.T) {
	p := newPair(t, pairOpts{})
	web := newBackend(t, whoami("web"))
	p.export("web", nil, web.addr())
	p.export("empty", nil)
	p.eg.SetRemotes(map[string]tunnel.Remote{
		"east":  {Addresses: []string{p.inAddr}, Identity: p.east.GatewayID()},
		"north": {Addresses: []string{deadAddr(t)}, Identity: identityOf(p, "north")},
	})
	tg := func(svc string) tunnel.Target { return tunnel.Target{Namespace: "default", Service: svc, Port: 80} }
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for name, dests := range map[string][]Destination{
		"remote down":  {{Cluster: "north", Target: tg("web")}, {Cluster: "east", Target: tg("web")}},
		"no endpoints": {{Cluster: "east", Target: tg("empty")}, {Cluster: "east", Target: tg("web")}},
	} {
		t.Run(name, func(t *testing.T) {
			if err := p.eg.SetRoutes([]Route{{Port: port, Namespace: "default", Destinations: dests}}); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if got := hit(t, addr); got != "web" {
				t.Fatalf("got %q", got)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("failover took %v", d)
			}
		})
	}
	// Denials are final: a route must not fall through to another
	// destination after the remote said no.
	p.export("web", []string{"north"}, web.addr())
	if err := p.eg.SetRoutes([]Route{{Port: port, Namespace: "default", Destinations: []Destination{{Cluster: "east", Target: tg("web")}, {Cluster: "east", Target: tg("empty")}}}}); err != nil {
		t.Fatal(err)
	}
	expectRefused(t, addr)
	if v := testutil.ToFloat64(p.egMetrics.EgressFailed.WithLabelValues("east", "unavailable")); v != 1 {
		t.Fatalf("denied stream fell through to the next destination (unavailable=%v)", v)
	}
}

func identityOf(p *pair, cluster string) identity.ID {
	return contract.GatewayID(p.mesh.Domain, cluster)
}
