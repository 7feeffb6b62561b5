package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"ferry.dev/ferry/internal/tooling/testkit"
)

func TestKeepaliveDetectsDeadPeer(t *testing.T) {
	e := newEnv(t, echoHandler{}, testLimits(), nil)
	px := testkit.NewFreezeProxy(t, e.addr)
	lim := testLimits()
	lim.KeepAliveInterval = 200 * time.Millisecond
	lim.KeepAliveTimeout = 300 * time.Millisecond
	obs := newRecorder()
	c, err := NewClient(ClientOptions{TLS: e.west.Gateway, Limits: lim, PoolSize: 1, Observer: obs, Logger: testkit.Logger(), MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetRemotes(map[string]Remote{"east": {Addresses: []string{px.Addr()}, Identity: e.east.GatewayID()}})
	testkit.EventuallyWithin(t, 2*time.Second, "remote up", func() bool { up, _ := obs.isUp("east"); return up })

	px.Freeze(true)
	start := time.Now()
	testkit.EventuallyWithin(t, 2*time.Second, "dead peer detected", func() bool { up, _ := obs.isUp("east"); return !up })
	if d := time.Since(start); d > lim.KeepAliveInterval+lim.KeepAliveTimeout+500*time.Millisecond {
		t.Fatalf("dead peer detected after %v", d)
	}
	// The path heals: the pool reconnects on its own.
	px.Freeze(false)
	testkit.EventuallyWithin(t, 3*time.Second, "remote up again", func() bool { up, _ := obs.isUp("east"); return up })
	st, err := c.Open(openCtx(t), "east", target)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
}

func TestFailoverAcrossAddresses(t *testing.T) {
	e := newEnv(t, echoHandler{}, testLimits(), nil)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens there: connection refused
	c, err := NewClient(ClientOptions{TLS: e.west.Gateway, Limits: testLimits(), PoolSize: 2, Logger: testkit.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetRemotes(map[string]Remote{"east": {Addresses: []string{deadAddr, e.addr}, Identity: e.east.GatewayID()}})
	st, err := c.Open(openCtx(t), "east", target)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
}

func TestDrainLetsStreamFinish(t *testing.T) {
	e := newEnv(t, echoHandler{}, testLimits(), nil)
	c, _ := e.client(t, e.west.Gateway, 1, testLimits())
	st, err := c.Open(openCtx(t), "east", target)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	drained := make(chan error, 1)
	go func() { drained <- e.srv.Shutdown(ctx) }()
	testkit.EventuallyWithin(t, time.Second, "draining", e.srv.isDraining)

	// New streams are refused: the session answers draining and the listener is closed.
	short, cancelShort := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancelShort()
	if s2, err := c.Open(short, "east", target); err == nil {
		s2.Close()
		t.Fatal("opened a new stream on a draining server")
	}
	// The running stream still works both ways.
	if _, err := st.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "still here" {
		t.Fatalf("echo during drain: %q %v", buf, err)
	}
	select {
	case err := <-drained:
		t.Fatalf("drain returned with a stream running: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	_ = st.CloseWrite()
	_, _ = io.ReadAll(st)
	_ = st.Close()
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("drain: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("drain did not finish after the last stream")
	}
}

func TestDrainDeadlineCutsStreams(t *testing.T) {
	h := blockingHandler{release: make(chan struct{})}
	defer close(h.release)
	e := newEnv(t, h, testLimits(), nil)
	c, _ := e.client(t, e.west.Gateway, 1, testLimits())
	st, err := c.Open(openCtx(t), "east", target)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = e.srv.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	// The stream was cut: reading ends.
	_ = st.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := st.Read(make([]byte, 1)); err == nil {
		t.Fatal("stream still open after hard stop")
	}
}

// A draining replica moves the pool to another replica without failing new
// streams, while a stream still runs on the draining one (so its session
// stays up and answers the next stream draining).
func TestDrainMovesToOtherReplica(t *testing.T) {
	e := newEnv(t, echoHandler{}, testLimits(), nil)
	// A second replica of east's gateway.
	srv2, err := NewServer(ServerOptions{Local: e.east.GatewayID(), TLS: e.east.Gateway, Handler: echoHandler{}, Limits: testLimits(), Logger: testkit.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv2.Serve(t.Context(), ln2) }()
	defer srv2.Shutdown(context.Background())

	c, err := NewClient(ClientOptions{TLS: e.west.Gateway, Limits: testLimits(), PoolSize: 1, Logger: testkit.Logger(), MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetRemotes(map[string]Remote{"east": {Addresses: []string{e.addr, ln2.Addr().String()}, Identity: e.east.GatewayID()}})
	running := openEcho(t, c, "east")
	first := running.Stream.Session()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	drained := make(chan error, 1)
	go func() { drained <- e.srv.Shutdown(ctx) }()
	testkit.EventuallyWithin(t, time.Second, "draining", e.srv.isDraining)
	// The next Open hits the draining session; it must still succeed, on
	// replica 2.
	st := openEcho(t, c, "east")
	if st.Stream.Session() == first {
		t.Fatal("a new stream on the draining replica's session")
	}
	roundTrip(t, st)
	_ = st.Close()
	if first.IsClosed() {
		t.Fatal("the draining session closed while a stream ran on it")
	}
	roundTrip(t, running)
	_ = running.Close()
	if err := <-drained; err != nil {
		t.Fatalf("drain: %v", err)
	}
}

func TestOpenFailsFastWhenRemoteDown(t *testing.T) {
	e := newEnv(t, echoHandler{}, testLimits(), nil)
	// An address of its own on loopback (not 127.0.0.1, where every other
	// test and the outgoing connections take their ports), so that nobody
	// takes the port while the remote is down.
	dead, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := dead.Addr().String()
	dead.Close()
	c, err := NewClient(ClientOptions{TLS: e.west.Gateway, Limits: testLimits(), Logger: testkit.Logger(), MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetRemotes(map[string]Remote{"east": {Addresses: []string{addr}, Identity: e.east.GatewayID()}})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := c.Open(ctx, "east", target); !errors.Is(err, ErrRemoteDown) {
		t.Fatalf("err = %v, want ErrRemoteDown", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Open waited %v for a dead remote", d)
	}
	// The remote comes back at its address: the pool recovers by itself.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the remote's address %s was taken while it was down: %v", addr, err)
	}
	go func() { _ = e.srv.Serve(t.Context(), ln) }()
	testkit.EventuallyWithin(t, 3*time.Second, "remote live again", func() bool { return c.Live("east") })
	st, err := c.Open(openCtx(t), "east", target)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
}

// When a session with many streams dies, every reader on both sides must be
// released promptly (hashicorp/yamux v0.1.2 left them spinning until its
// Close reached each stream; this test failed one run in six with -race).
func TestSessionDeathReleasesStreams(t *testing.T) {
	h := blockingHandler{release: make(chan struct{})}
	defer close(h.release)
	e := newEnv(t, h, testLimits(), nil)
	c, _ := e.client(t, e.west.Gateway, 1, testLimits())
	const n = 500
	var wg sync.WaitGroup
	for range n {
		st, err := c.Open(openCtx(t), "east", target)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer st.Close()
			_, _ = st.Read(make([]byte, 1)) // blocks until the session dies
		}()
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // hard stop: no drain
	start := time.Now()
	_ = e.srv.Shutdown(ctx)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("readers still blocked 5s after the session died")
	}
	t.Logf("%d streams released in %v", n, time.Since(start))
	testkit.EventuallyWithin(t, 2*time.Second, "server streams released", func() bool { return e.srv.ActiveStreams() == 0 })
}
