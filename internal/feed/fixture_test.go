package feed

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// fixture is east's feed server on a real TLS socket, with a mesh of
// clusters east (the exporter), west and north.
type fixture struct {
	mesh    *identitytest.Mesh
	pub     *exports.Publisher
	srv     *Server
	metrics *Metrics
	addr    string
}

func newFixture(t *testing.T, opts ServerOptions) *fixture {
	t.Helper()
	mesh := identitytest.NewMesh(t, "", "east", "west", "north")
	f := &fixture{mesh: mesh, pub: exports.NewPublisher()}
	var err error
	if f.metrics, err = NewMetrics(nil); err != nil {
		t.Fatal(err)
	}
	opts.LocalCluster, opts.Logger, opts.Metrics = "east", testkit.Logger(), f.metrics
	if f.srv, err = NewServer(f.pub, opts); err != nil {
		t.Fatal(err)
	}
	f.addr = f.serve(t, f.srv)
	return f
}

// serve runs srv behind a TLS listener configured as the gateway's is: any
// mesh peer passes TLS, and the feed decides who may subscribe.
func (f *fixture) serve(t *testing.T, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.mesh.Cluster(t, "east").Gateway.ServerTLSConfig(nil)
	cfg.NextProtos = []string{"h2"}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(tls.NewListener(ln, cfg)) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// publish publishes es and waits until the server's journal has taken
// them: the journal follows the source level-based, so publishes in quick
// succession would otherwise coalesce into one version.
func (f *fixture) publish(es ...exports.Export) {
	f.pub.Publish(setOf(es...), nil)
	want := f.pub.Current()
	for {
		f.srv.journal.mu.Lock()
		done := f.srv.journal.set == want
		f.srv.journal.mu.Unlock()
		if done {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (f *fixture) clientConfig(t *testing.T, cluster string) ClientConfig {
	return ClientConfig{
		Addresses:         []string{f.addr},
		ServerID:          f.mesh.Cluster(t, "east").GatewayID(),
		TLS:               f.mesh.Cluster(t, cluster).Controller,
		Logger:            testkit.Logger(),
		HeartbeatInterval: 100 * time.Millisecond,
		HeartbeatTimeout:  2 * time.Second,
		BackoffInitial:    20 * time.Millisecond,
		BackoffMax:        100 * time.Millisecond,
	}
}

func (f *fixture) sent(cluster, kind string) float64 {
	return testutil.ToFloat64(f.metrics.Messages.WithLabelValues(cluster, kind))
}

func (f *fixture) updates(cluster, kind string) float64 {
	return testutil.ToFloat64(f.metrics.Updates.WithLabelValues(cluster, kind))
}

// waitCounted waits until the server has counted at least n updates of a
// kind. The server counts an update after Send returns, so a client can hold
// an update before the server's counter shows it.
func (f *fixture) waitCounted(t *testing.T, cluster, kind string, n float64) {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("%v %s updates counted for %s", n, kind, cluster), func() bool {
		return f.updates(cluster, kind) >= n
	})
}

// recorder is a Handler that keeps the imported state and what happened.
type recorder struct {
	mu           sync.Mutex
	state        map[exports.Key]exports.Export
	version      uint64
	updates      []Update
	connected    int
	disconnected []error
	heartbeats   []uint64
	changed      chan struct{}
}

func newRecorder() *recorder {
	return &recorder{state: map[exports.Key]exports.Export{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) Apply(u Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u.Snapshot {
		clear(r.state)
	}
	for _, e := range u.Upserts {
		r.state[e.Key] = e
	}
	for _, k := range u.Deletes {
		delete(r.state, k)
	}
	r.version = u.Version
	r.updates = append(r.updates, u)
	r.notify()
}

func (r *recorder) Connected() {
	r.mu.Lock()
	r.connected++
	r.mu.Unlock()
	r.notify()
}

func (r *recorder) Disconnected(err error) {
	r.mu.Lock()
	r.disconnected = append(r.disconnected, err)
	r.mu.Unlock()
	r.notify()
}

func (r *recorder) Heartbeat(v uint64) {
	r.mu.Lock()
	r.heartbeats = append(r.heartbeats, v)
	r.version = v
	r.mu.Unlock()
	r.notify()
}

// wait waits until cond (called with the lock held) holds.
func (r *recorder) wait(t *testing.T, what string, cond func(r *recorder) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("timed out waiting for %s: %d updates, %d connects, disconnects %v", what, len(r.updates), r.connected, r.disconnected)
		}
	}
}

// run runs a client until the test ends and returns a stop function that
// cancels it and waits.
func run(t *testing.T, cfg ClientConfig, h Handler, resume uint64) (stop func()) {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h, resume) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// newFixtureMesh is a second mesh with the same domain and cluster names
// but its own root: what an attacker with a self-made CA would present.
func newFixtureMesh(t *testing.T) *identitytest.Mesh {
	return identitytest.NewMesh(t, "", "east", "west", "north")
}

func testutilToFloat(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }
