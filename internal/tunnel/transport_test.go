package tunnel

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-yamux/v5"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testkit"
)

func TestClientServerEcho(t *testing.T) {
	e := newEnv(t, echoHandler{}, testLimits(), nil)
	c, obs := e.client(t, e.west.Gateway, 2, testLimits())
	st, err := c.Open(openCtx(t), "east", target)
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("ferry"), 100_000)
	go func() {
		_, _ = st.Write(msg)
		_ = st.CloseWrite()
	}()
	got, err := io.ReadAll(st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo returned %d bytes, want %d", len(got), len(msg))
	}
	_ = st.Close()
	testkit.EventuallyWithin(t, 2*time.Second, "pool of 2", func() bool { return c.Live("east") && obs.sessions["east"] == 2 })
	if up, _ := obs.isUp("east"); !up {
		t.Fatal("remote not reported up")
	}
}

func TestConcurrentStreamsOneSession(t *testing.T) {
	e := newEnv(t, echoHandler{}, testLimits(), nil)
	c, _ := e.client(t, e.west.Gateway, 1, testLimits())
	const n = 1000
	// 1000 handshakes at once under the race detector on two cores can take
	// seconds; the deadline is about liveness, not speed.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := c.Open(ctx, "east", target)
			if err != nil {
				errs <- err
				return
			}
			defer st.Close()
			msg := []byte{byte(i), byte(i >> 8), 1, 2, 3}
			if _, err := st.Write(msg); err != nil {
				errs <- err
				return
			}
			_ = st.CloseWrite()
			got, err := io.ReadAll(st)
			if err != nil || !bytes.Equal(got, msg) {
				errs <- errors.Join(err, errors.New("echo mismatch"))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e.srv.mu.Lock()
	sessions := len(e.srv.sessions)
	e.srv.mu.Unlock()
	if sessions != 1 {
		t.Fatalf("server saw %d sessions, want all streams on 1", sessions)
	}
}

func TestClientRejectsWrongServerIdentity(t *testing.T) {
	e := newEnv(t, echoHandler{}, testLimits(), nil)
	obs := newRecorder()
	c, err := NewClient(ClientOptions{TLS: e.west.Gateway, Limits: testLimits(), Observer: obs, Logger: testkit.Logger(), MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The Link says the remote is east's controller; the server is east's
	// gateway, so the client must refuse it.
	c.SetRemotes(map[string]Remote{"east": {Addresses: []string{e.addr}, Identity: e.east.ControllerID()}})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.Open(ctx, "east", target); err == nil {
		t.Fatal("opened a stream to a server with the wrong identity")
	}
	if up, ok := obs.isUp("east"); !ok || up {
		t.Fatalf("remote reported up=%v ok=%v", up, ok)
	}
}

// dialTLS connects to the server as an arbitrary client.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	// TLS 1.3 clients learn of a rejected certificate on their first read.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = c.Read(make([]byte, 1))
	return err
}

func TestServerPeerPolicy(t *testing.T) {
	sink := NewConnListener(nil, 4)
	e := newEnv(t, echoHandler{}, testLimits(), sink)
	foreign := identitytest.NewMesh(t, "", "west").Cluster(t, "west")
	cases := []struct {
		name   string
		cfg    func() *tls.Config
		reason string
	}{
		{"no client certificate", func() *tls.Config {
			return &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ALPNTunnel}, MinVersion: tls.VersionTLS13}
		}, ReasonNoClientCert},
		{"foreign root", func() *tls.Config {
			c := foreign.Gateway.ClientTLSConfig(e.east.GatewayID())
			c.VerifyConnection = nil // the foreign client would not trust east either
			c.NextProtos = []string{ALPNTunnel}
			return c
		}, ReasonUntrustedPeer},
		{"own cluster (hairpin)", func() *tls.Config {
			c := e.east.Gateway.ClientTLSConfig(e.east.GatewayID())
			c.NextProtos = []string{ALPNTunnel}
			return c
		}, ReasonForbiddenIdentity},
		{"workload identity", func() *tls.Config {
			c := e.west.Source(t, e.west.ID("default", "app")).ClientTLSConfig(e.east.GatewayID())
			c.NextProtos = []string{ALPNTunnel}
			return c
		}, ReasonForbiddenIdentity},
		{"controller opening a tunnel", func() *tls.Config {
			c := e.west.Controller.ClientTLSConfig(e.east.GatewayID())
			c.NextProtos = []string{ALPNTunnel}
			return c
		}, ReasonForbiddenIdentity},
		{"gateway on the feed protocol", func() *tls.Config {
			c := e.west.Gateway.ClientTLSConfig(e.east.GatewayID())
			c.NextProtos = []string{ALPNH2}
			return c
		}, ReasonForbiddenIdentity},
		{"no ALPN", func() *tls.Config {
			return e.west.Gateway.ClientTLSConfig(e.east.GatewayID())
		}, ReasonProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.srvObs.rejects(tc.reason)
			err := dialTLS(t, e.addr, tc.cfg())
			if err == nil {
				t.Fatal("server kept the connection open")
			}
			testkit.EventuallyWithin(t, 2*time.Second, "rejection "+tc.reason, func() bool { return e.srvObs.rejects(tc.reason) == before+1 })
		})
	}
	t.Run("controller reaches the h2 sink", func(t *testing.T) {
		cfg := e.west.Controller.ClientTLSConfig(e.east.GatewayID())
		cfg.NextProtos = []string{ALPNH2}
		c, err := tls.Dial("tcp", e.addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got, err := sink.Accept()
		if err != nil {
			t.Fatal(err)
		}
		// The feed's credentials need the TLS state: the sink gets the
		// *tls.Conn inside the h2 guard.
		g, ok := got.(*h2GuardConn)
		if !ok {
			t.Fatalf("sink got %T, want the h2 guard around a *tls.Conn", got)
		}
		hc := g.Conn
		if peer, err := identity.PeerID(hc.ConnectionState()); err != nil || peer != e.west.ControllerID() || hc.ConnectionState().NegotiatedProtocol != ALPNH2 {
			t.Fatalf("sink conn peer=%v err=%v", peer, err)
		}
		// Bytes flow: the sink owns a live TLS connection.
		go func() { _, _ = hc.Write([]byte("x")) }()
		b := make([]byte, 1)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		before := e.srv.conns.Load()
		_ = hc.Close()
		if after := e.srv.conns.Load(); after != before-1 {
			t.Fatalf("closing the h2 conn left %d connection slots taken (was %d)", after, before)
		}
	})
}

func TestHandshakeTimeout(t *testing.T) {
	lim := testLimits()
	lim.HandshakeTimeout = 200 * time.Millisecond
	e := newEnv(t, echoHandler{}, lim, nil)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	// Send nothing: the server must close within the handshake timeout.
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if elapsed := time.Since(start); err == nil || elapsed > time.Second {
		t.Fatalf("stalled handshake: err=%v after %v", err, elapsed)
	}
	testkit.EventuallyWithin(t, time.Second, "timeout counted", func() bool { return e.srvObs.rejects(ReasonHandshakeTimeout) == 1 })
}

func TestHandshakeLimit(t *testing.T) {
	lim := testLimits()
	lim.MaxPendingHandshakes = 2
	e := newEnv(t, echoHandler{}, lim, nil)
	// Two stalled handshakes fill the limit; the deferred closes keep them open.
	for range 2 {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// The third stalled connection is refused at once.
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("over-limit connection: %v, want EOF", err)
	}
	if e.srvObs.rejects(ReasonHandshakeLimit) != 1 {
		t.Fatal("handshake limit not counted")
	}
}

func TestStreamLimitPerSession(t *testing.T) {
	lim := testLimits()
	lim.MaxStreamsPerSession = 2
	h := blockingHandler{release: make(chan struct{})}
	defer close(h.release)
	e := newEnv(t, h, lim, nil)
	// The client is configured with a higher limit, like a misconfigured peer.
	c, _ := e.client(t, e.west.Gateway, 1, testLimits())
	for range 2 {
		st, err := c.Open(openCtx(t), "east", target)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
	}
	_, err := c.Open(openCtx(t), "east", target)
	if !isReject(err, StatusOverloaded) {
		t.Fatalf("third stream: %v, want overloaded", err)
	}
	if e.srvObs.rejects(ReasonStreamLimit) != 1 {
		t.Fatal("stream limit not counted")
	}
}

func TestClientRespectsStreamLimit(t *testing.T) {
	h := blockingHandler{release: make(chan struct{})}
	defer close(h.release)
	e := newEnv(t, h, testLimits(), nil)
	lim := testLimits()
	lim.MaxStreamsPerSession = 1
	c, _ := e.client(t, e.west.Gateway, 1, lim)
	st, err := c.Open(openCtx(t), "east", target)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(openCtx(t), "east", target); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("err = %v, want ErrPoolExhausted", err)
	}
	// Closing the stream frees its slot.
	_ = st.Close()
	st, err = c.Open(openCtx(t), "east", target)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
}

func TestSessionsPerCallerLimit(t *testing.T) {
	lim := testLimits()
	lim.MaxSessionsPerCaller = 1
	e := newEnv(t, echoHandler{}, lim, nil)
	c, _ := e.client(t, e.west.Gateway, 3, testLimits())
	testkit.EventuallyWithin(t, 3*time.Second, "caller limit hit", func() bool { return e.srvObs.rejects(ReasonCallerLimit) >= 1 })
	e.srv.mu.Lock()
	n := e.srv.perCaller[e.west.GatewayID()]
	e.srv.mu.Unlock()
	if n != 1 {
		t.Fatalf("server holds %d sessions from west, limit 1", n)
	}
	// The one admitted session still works.
	st, err := c.Open(openCtx(t), "east", target)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
}

// A peer that never finishes its streams (no FIN after the reply) pins
// nothing on ingress: each stream leaves the table when ingress closes its
// side, so a hundred of them on a session limited to four streams are all
// answered, and the session and the budget end up empty.
func TestLingeringStreamsPinNothing(t *testing.T) {
	lim := testLimits()
	lim.MaxStreamsPerSession = 4
	e := newEnv(t, echoHandler{}, lim, nil)
	sess := rawSession(t, e)
	lingerRefused(t, []*yamux.Session{sess}, 100)
	testkit.EventuallyWithin(t, 2*time.Second, "ingress table and budget empty", func() bool {
		k, all := e.srv.budget.held(e.west.GatewayID().String())
		return k == 0 && all == 0
	})
	if sess.IsClosed() {
		t.Fatal("the session was closed")
	}
}

// lingerRefused opens n streams over sessions in turn, each ended by
// ingress for a bad header, and never closes them. Each must be ended (a
// clean EOF) rather than left waiting.
func lingerRefused(t *testing.T, sessions []*yamux.Session, n int) {
	t.Helper()
	for i := range n {
		st, err := sessions[i%len(sessions)].OpenStream(context.Background())
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		_, _ = st.Write([]byte{0, 1, 99})
		_ = st.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.ReadAll(st); err != nil {
			t.Fatalf("stream %d: %v, want EOF", i, err)
		}
	}
}

// rawSession opens a yamux session to e's server as west's gateway, with no
// egress client in between, so a test can misbehave on it. It is closed at
// the end of the test.
func rawSession(t *testing.T, e *env) *yamux.Session {
	t.Helper()
	cfg := e.west.Gateway.ClientTLSConfig(e.east.GatewayID())
	cfg.NextProtos = []string{ALPNTunnel}
	tc, err := tls.Dial("tcp", e.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := yamux.Client(tc, quietYamux(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	return sess
}

func quietYamux() *yamux.Config {
	c := yamux.DefaultConfig()
	c.LogOutput = io.Discard
	return c
}
