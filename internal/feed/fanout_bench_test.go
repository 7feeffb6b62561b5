package feed

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// BenchmarkFanOutChange: one exporting cluster with n exports serves the
// feed to 50 importing clusters over real TLS loopback connections, and one
// export changes per op. An op ends when every importer has applied the
// delta, so ns/op is the end-to-end latency of a change and allocs/op
// counts both ends (server, gRPC and the 50 clients' decoding). wire-B/imp
// is what each importer read from its TCP connection (TLS, HTTP/2 and
// gRPC framing included), msg-B/imp the encoded feed messages. None of
// them may grow with n: a change costs O(importers that can see it).
//
// The Publisher is fed one change at a time through Apply, as the Watcher
// feeds it, so building the next Set (O(log n)) is counted too.
func BenchmarkFanOutChange(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("exports=%d", n), func(b *testing.B) { benchFanOut(b, n, 50) })
	}
}

func benchFanOut(b *testing.B, n, importers int) {
	names := make([]string, importers)
	for i := range names {
		names[i] = fmt.Sprintf("c%02d", i)
	}
	mesh := identitytest.NewMesh(b, "", append([]string{"east"}, names...)...)
	m, err := NewMetrics(nil)
	if err != nil {
		b.Fatal(err)
	}
	pub := exports.NewPublisher()
	srv, err := NewServer(pub, ServerOptions{
		LocalCluster: "east", Logger: testkit.Logger(), Metrics: m,
		// No heartbeat may fall inside the timed loop.
		HeartbeatInterval: time.Hour, HeartbeatTimeout: 2 * time.Hour,
	})
	if err != nil {
		b.Fatal(err)
	}
	addr := benchServe(b, mesh, srv)

	es := benchExports(n)
	a := setOf(es...)
	changed := es[n/2]
	changed.ReadyEndpoints++
	orig := es[n/2]
	flip := [2][]exports.Change{{{Key: changed.Key, Export: &changed}}, {{Key: orig.Key, Export: &orig}}}
	pub.Publish(a, nil)

	var wire atomic.Int64
	applied := make(chan Update, importers)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	for _, name := range names {
		c, err := NewClient(ClientConfig{
			Addresses: []string{addr},
			ServerID:  mesh.Cluster(b, "east").GatewayID(),
			TLS:       mesh.Cluster(b, name).Controller,
			Logger:    testkit.Logger(),
			// Large enough for one connection to carry a 10k snapshot
			// without the client giving up.
			HeartbeatInterval: time.Hour, HeartbeatTimeout: 2 * time.Hour,
			Dialer: func(ctx context.Context, addr string) (net.Conn, error) {
				conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
				if err != nil {
					return nil, err
				}
				return countingConn{conn, &wire}, nil
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Run(ctx, applyChan(applied), 0) }()
	}
	for range importers {
		if u := <-applied; !u.Snapshot || len(u.Upserts) != n {
			b.Fatalf("first update: snapshot %v with %d exports, want %d", u.Snapshot, len(u.Upserts), n)
		}
	}

	bytesSent := func() float64 {
		total := 0.0
		for _, name := range names {
			total += testutilToFloat(m.Bytes.WithLabelValues(name))
		}
		return total
	}
	wire0, msg0 := wire.Load(), bytesSent()
	ops := 0
	b.ReportAllocs()
	for b.Loop() {
		pub.Apply(flip[ops%2])
		ops++
		for range importers {
			if u := <-applied; u.Snapshot || len(u.Upserts) != 1 || len(u.Deletes) != 0 {
				b.Fatalf("update: snapshot %v, %d upserts, %d deletes; want a delta of one export", u.Snapshot, len(u.Upserts), len(u.Deletes))
			}
		}
	}
	per := float64(ops * importers)
	b.ReportMetric(float64(wire.Load()-wire0)/per, "wire-B/imp")
	b.ReportMetric((bytesSent()-msg0)/per, "msg-B/imp")
}

// benchServe serves srv on a TLS loopback listener configured as the
// gateway's is, until the benchmark ends.
func benchServe(b *testing.B, mesh *identitytest.Mesh, srv *Server) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	cfg := mesh.Cluster(b, "east").Gateway.ServerTLSConfig(nil)
	cfg.NextProtos = []string{"h2"}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(tls.NewListener(ln, cfg)) }()
	b.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil {
			b.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// applyChan is a Handler that passes every Update on.
type applyChan chan Update

func (c applyChan) Apply(u Update)     { c <- u }
func (c applyChan) Connected()         {}
func (c applyChan) Disconnected(error) {}
func (c applyChan) Heartbeat(uint64)   {}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}
