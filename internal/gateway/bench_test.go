package gateway

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-yamux/v5"

	"ferry.dev/ferry/internal/tooling/testkit"
	"ferry.dev/ferry/internal/tunnel"
)

// Benchmarks for docs/benchmarks.md. Run:
//
//	go test ./internal/gateway -run '^$' -bench . -benchtime 2s
//	go test ./internal/gateway -run '^$' -bench IdleStreamMemory -benchtime 1000x

func benchLimits() Limits {
	l := testLimits()
	// Fresh-TLS-per-connection opens one session per iteration; the caller
	// limit would otherwise refuse sessions whose close is still in flight.
	l.Tunnel.MaxSessionsPerCaller = 1 << 20
	l.Tunnel.MaxConnections = 1 << 20
	// BenchmarkIdleStreamMemory holds up to 4,000 streams from one client
	// on one session; served streams may hold half of the caller's budget,
	// in 256 KiB opening windows.
	l.MaxEgressConnsPerClient = 4000
	l.Tunnel.MaxStreamsPerSession = 4000
	l.Tunnel.MaxCallerStreamMemory = 2 * 4000 * 256 << 10
	l.Tunnel.MaxTotalStreamMemory = l.Tunnel.MaxCallerStreamMemory
	l.IdleTimeout = time.Minute
	return l
}

func benchPair(b *testing.B, poolSize int) *pair {
	return newPair(b, pairOpts{inLimits: benchLimits(), egLimits: benchLimits(), poolSize: poolSize})
}

// BenchmarkThroughput pushes bytes client → egress → tunnel → ingress →
// backend on one connection (b.SetBytes makes -bench report MB/s).
func BenchmarkThroughput(b *testing.B) {
	p := benchPair(b, 1)
	be := newBackend(b, func(c *net.TCPConn, _ *backend) {
		n, _ := io.Copy(io.Discard, c)
		_ = binary.Write(c, binary.BigEndian, n)
	})
	p.export("sink", nil, be.addr())
	c := dial(b, p.route(b, "sink"))
	chunk := make([]byte, 64<<10)
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	_ = c.CloseWrite()
	var got int64
	if err := binary.Read(c, binary.BigEndian, &got); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if got != int64(b.N*len(chunk)) {
		b.Fatalf("backend got %d bytes, want %d", got, b.N*len(chunk))
	}
}

// BenchmarkNewStream compares, in one run, the cost of a new client
// connection over the pooled session with a fresh TCP+TLS connection per
// client connection (the alternative design), on plain loopback and behind
// a proxy that adds 5 ms each way (a 10 ms RTT WAN). Each iteration opens a
// stream to an echo backend, round-trips one byte and closes.
func BenchmarkNewStream(b *testing.B) {
	for _, rtt := range []time.Duration{0, 10 * time.Millisecond} {
		p := benchPair(b, 1)
		be := newBackend(b, echo)
		p.export("echo", nil, be.addr())
		addr := p.inAddr
		if rtt > 0 {
			addr = delayProxy(b, p.inAddr, rtt/2)
		}
		tg := tunnel.Target{Namespace: "default", Service: "echo", Port: 80}

		b.Run(fmt.Sprintf("rtt=%v/pooled", rtt), func(b *testing.B) {
			c, err := tunnel.NewClient(tunnel.ClientOptions{TLS: p.west.Gateway, Limits: benchLimits().Tunnel, PoolSize: 1, Logger: testkit.Logger()})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			c.SetRemotes(map[string]tunnel.Remote{"east": {Addresses: []string{addr}, Identity: p.east.GatewayID()}})
			testkit.EventuallyWithin(b, 5*time.Second, "session", func() bool { return c.Live("east") })
			b.ResetTimer()
			for range b.N {
				st, err := c.Open(context.Background(), "east", tg)
				if err != nil {
					b.Fatal(err)
				}
				roundTrip(b, st)
				_ = st.Close()
			}
		})
		b.Run(fmt.Sprintf("rtt=%v/fresh-tls", rtt), func(b *testing.B) {
			for range b.N {
				st, sess := freshStream(b, p, addr, tg)
				roundTrip(b, st)
				_ = st.Close()
				_ = sess.Close()
			}
		})
	}
}

func roundTrip(b *testing.B, c net.Conn) {
	if _, err := c.Write([]byte{1}); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
}

// freshStream is what the gateway would do without pooling: TCP connect,
// full mutual TLS 1.3 handshake, then the stream.
func freshStream(b *testing.B, p *pair, addr string, tg tunnel.Target) (net.Conn, *yamux.Session) {
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	cfg := p.west.Gateway.ClientTLSConfig(p.east.GatewayID())
	cfg.NextProtos = []string{tunnel.ALPNTunnel}
	tc := tls.Client(raw, cfg)
	if err := tc.Handshake(); err != nil {
		b.Fatal(err)
	}
	yc := yamux.DefaultConfig()
	yc.LogOutput = io.Discard
	sess, err := yamux.Client(tc, yc, nil)
	if err != nil {
		b.Fatal(err)
	}
	st, err := sess.OpenStream(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if err := tunnel.WriteHeader(st, tg); err != nil {
		b.Fatal(err)
	}
	if err := tunnel.ReadReply(st); err != nil {
		b.Fatal(err)
	}
	return st, sess
}

// delayProxy forwards TCP to target, delivering every chunk oneWay later.
func delayProxy(b *testing.B, target string, oneWay time.Duration) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); delayCopy(u, c, oneWay) }()
			go func() { defer wg.Done(); delayCopy(c, u, oneWay) }()
		}
	}()
	return ln.Addr().String()
}

func delayCopy(dst, src net.Conn, d time.Duration) {
	type chunk struct {
		at   time.Time
		data []byte
	}
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{time.Now().Add(d), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

// BenchmarkIdleStreamMemory holds b.N idle connections open through
// egress → tunnel → ingress → backend and reports the heap and stack they
// cost in this process, minus the same number of direct client → backend
// connections (the baseline an application pays anyway). Use
// -benchtime 1000x: each connection holds 4 sockets here.
func BenchmarkIdleStreamMemory(b *testing.B) {
	if b.N > 4000 {
		b.Skip("run with -benchtime 1000x (file descriptors)")
	}
	// Backends hold their side until the client closes, so cleanup (which
	// waits for backend goroutines) cannot deadlock.
	idle := func(c *net.TCPConn, _ *backend) {
		_, _ = c.Write([]byte{1})
		_, _ = c.Read(make([]byte, 1))
	}
	p := benchPair(b, 1)
	be := newBackend(b, idle)
	p.export("idle", nil, be.addr())
	addr := p.route(b, "idle")
	direct := newBackend(b, idle)

	open := func(addr string, n int) []net.Conn {
		conns := make([]net.Conn, 0, n)
		// On failure too, or the backends' cleanup would wait for them.
		b.Cleanup(func() {
			for _, c := range conns {
				c.Close()
			}
		})
		for range n {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				b.Fatal(err)
			}
		}
		return conns
	}
	// Warm up pools, sessions and buffers so they are not charged per stream.
	for _, c := range append(open(addr, 10), open(direct.addr(), 10)...) {
		c.Close()
	}
	b.ResetTimer()
	m0 := memNow()
	base := open(direct.addr(), b.N)
	m1 := memNow()
	viaGW := open(addr, b.N)
	m2 := memNow()
	b.StopTimer()
	perBase := float64(m1-m0) / float64(b.N)
	perGW := float64(m2-m1) / float64(b.N)
	b.ReportMetric(perGW-perBase, "B/idle-stream")
	b.ReportMetric(perBase, "B/direct-conn")
	for _, c := range append(base, viaGW...) {
		c.Close()
	}
}

func memNow() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}
