package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testkit"
	"ferry.dev/ferry/internal/tunnel"
)

// backend is a TCP server on loopback that records what reached it.
type backend struct {
	ln       net.Listener
	accepted atomic.Int64
	bytes    atomic.Int64
	serve    func(c *net.TCPConn, b *backend)
}

// echo reads until EOF, echoing, then half-closes: it preserves the client's
// half-close back to the client.
func echo(c *net.TCPConn, b *backend) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			b.bytes.Add(int64(n))
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			_ = c.CloseWrite()
			return
		}
	}
}

func newBackend(t testing.TB, serve func(*net.TCPConn, *backend)) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{ln: ln, serve: serve}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				b.serve(c.(*net.TCPConn), b)
			}()
		}
	}()
	return b
}

func (b *backend) addr() string { return b.ln.Addr().String() }

// deadAddr is a loopback address where nothing listens.
func deadAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func freePort(t testing.TB) int {
	a := deadAddr(t)
	_, p, _ := net.SplitHostPort(a)
	n, _ := strconv.Atoi(p)
	return n
}

// countingDialer records dial attempts per address.
type countingDialer struct {
	mu    sync.Mutex
	tries map[string]int
	d     net.Dialer
}

func (c *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c.mu.Lock()
	if c.tries == nil {
		c.tries = map[string]int{}
	}
	c.tries[addr]++
	c.mu.Unlock()
	return c.d.DialContext(ctx, network, addr)
}

func (c *countingDialer) count(addr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tries[addr]
}

// pair is east's ingress and west's egress, wired over loopback.
type pair struct {
	mesh      *identitytest.Mesh
	east      *identitytest.Cluster
	west      *identitytest.Cluster
	exports   *exports.Publisher
	endpoints *EndpointTable
	dialer    *countingDialer
	in        *Ingress
	inAddr    string
	inMetrics *Metrics
	eg        *Egress
	egMetrics *Metrics
	reg       *prometheus.Registry // ingress metrics
	egReg     *prometheus.Registry // egress metrics
}

func testLimits() Limits {
	l := Limits{
		Tunnel: tunnel.Limits{
			HandshakeTimeout:  time.Second,
			KeepAliveInterval: time.Second,
			// Also yamux's frame-write timeout: a loaded test machine must
			// not turn a slow send queue into failed streams.
			KeepAliveTimeout:  5 * time.Second,
			StreamOpenTimeout: 2 * time.Second,
		},
		HeaderTimeout:   time.Second,
		IdleTimeout:     5 * time.Second,
		DialTimeout:     500 * time.Millisecond,
		EndpointBackoff: time.Minute,
		OpenTimeout:     3 * time.Second,
		DrainTimeout:    3 * time.Second,
	}
	// The rest take the defaults.
	l.Default()
	return l
}

type pairOpts struct {
	inLimits, egLimits Limits
	poolSize           int
	// callers and callerMode are the egress's; nil is AnyCaller.
	callers    CallerPolicy
	callerMode CallerMode
	// localEndpoints are west's own, for local destinations.
	localEndpoints EndpointPicker
	// egLog is west's egress logger; nil is testkit.Logger().
	egLog *slog.Logger
}

func newPair(t testing.TB, po pairOpts) *pair {
	t.Helper()
	if po.inLimits == (Limits{}) {
		po.inLimits = testLimits()
	}
	if po.egLimits == (Limits{}) {
		po.egLimits = testLimits()
	}
	// A test sets only the limits it is about; the rest take the defaults.
	po.inLimits.Default()
	po.egLimits.Default()
	m := identitytest.NewMesh(t, "", "east", "west", "north")
	p := &pair{
		mesh: m, east: m.Cluster(t, "east"), west: m.Cluster(t, "west"),
		exports: exports.NewPublisher(), endpoints: NewEndpointTable(), dialer: &countingDialer{},
		reg: prometheus.NewRegistry(), egReg: prometheus.NewRegistry(),
	}
	var err error
	if p.inMetrics, err = NewMetrics(p.reg); err != nil {
		t.Fatal(err)
	}
	if p.egMetrics, err = NewMetrics(p.egReg); err != nil {
		t.Fatal(err)
	}
	p.in, err = NewIngress(IngressOptions{
		Local: p.east.GatewayID(), TLS: p.east.Gateway, Authorizer: NewExportAuthorizer(p.exports), Endpoints: p.endpoints,
		Dialer: p.dialer, Limits: po.inLimits, Metrics: p.inMetrics, Logger: testkit.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.inAddr = ln.Addr().String()
	go func() { _ = p.in.Serve(context.Background(), ln) }()

	if po.callers == nil {
		po.callers = AnyCaller
	}
	if po.egLog == nil {
		po.egLog = testkit.Logger()
	}
	p.eg, err = NewEgress(context.Background(), EgressOptions{
		TLS: p.west.Gateway, ListenHost: "127.0.0.1", PoolSize: po.poolSize,
		Callers: po.callers, CallerMode: po.callerMode, LocalEndpoints: po.localEndpoints,
		Limits: po.egLimits, Metrics: p.egMetrics, Logger: po.egLog,
	})
	if err != nil {
		t.Fatal(err)
	}
	p.eg.SetRemotes(map[string]tunnel.Remote{"east": {Addresses: []string{p.inAddr}, Identity: p.east.GatewayID()}})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = Drain(ctx, nil, 0, p.eg, p.in)
	})
	return p
}

// export publishes default/<svc> port 80 backed by addrs.
func (p *pair) export(svc string, allowed []string, addrs ...string) {
	// Keep earlier exports: the current set plus this one.
	set := p.exports.Current().Map()
	e := exports.TCP("default", svc, 80)
	e.AllowedClusters = allowed
	set[e.Key] = e
	p.exports.Publish(set, nil)
	p.endpoints.Set("default", svc, 80, addrs)
}

// route opens an egress port for default/<svc>:80 in east and returns its
// address.
func (p *pair) route(t testing.TB, svc string) string {
	t.Helper()
	port := freePort(t)
	err := p.eg.SetRoutes([]Route{{Port: port, Namespace: "default", Destinations: []Destination{{Cluster: "east", Target: tunnel.Target{Namespace: "default", Service: svc, Port: 80}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

func (p *pair) rejected(reason string) float64 {
	return testutil.ToFloat64(p.inMetrics.IngressRejected.WithLabelValues(reason))
}

func (p *pair) failed(export, reason string) float64 {
	return testutil.ToFloat64(p.inMetrics.IngressFailed.WithLabelValues(export, reason))
}

func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func readAll(t testing.TB, c net.Conn) ([]byte, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return io.ReadAll(c)
}

// failureCounters renders the failure and rejection series of both sides,
// for test failure messages.
func (p *pair) failureCounters() string {
	var out []string
	for _, reg := range []*prometheus.Registry{p.reg, p.egReg} {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if !strings.Contains(mf.GetName(), "failed") && !strings.Contains(mf.GetName(), "rejected") {
				continue
			}
			for _, m := range mf.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
				out = append(out, fmt.Sprintf("%s{%s} %v", mf.GetName(), strings.Join(labels, ","), m.GetCounter().GetValue()))
			}
		}
	}
	return strings.Join(out, "\n")
}
