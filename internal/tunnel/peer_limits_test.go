package tunnel

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-yamux/v5"

	"ferry.dev/ferry/internal/tooling/testkit"
)

// dialFrom opens a TCP connection to addr from the local IP src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot dial from %s (loopback alias missing?): %v", src, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// refusedAtOnce asserts that the server closes c without waiting for it.
func refusedAtOnce(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("over-limit connection: %v, want EOF", err)
	}
}

func TestPendingHandshakesPerIP(t *testing.T) {
	lim := testLimits()
	lim.HandshakeTimeout = 10 * time.Second
	lim.ClientHelloTimeout = 10 * time.Second // the stalled conns must outlive the test
	lim.MaxPendingHandshakesPerIP = 8
	e := newEnv(t, echoHandler{}, lim, nil)
	// Eight stalled connections from 127.0.0.1 take its whole share.
	for range 8 {
		dialFrom(t, "127.0.0.1", e.addr)
	}
	// The ninth is refused at once and counted.
	refusedAtOnce(t, dialFrom(t, "127.0.0.1", e.addr))
	testkit.EventuallyWithin(t, time.Second, "per-IP limit counted", func() bool { return e.srvObs.rejects(ReasonIPHandshakeLimit) == 1 })
	if n := e.srvObs.rejects(ReasonHandshakeLimit); n != 0 {
		t.Fatalf("global handshake limit hit %d times, want 0", n)
	}
	// Another address still completes a handshake and gets a live session.
	raw := dialFrom(t, "127.0.0.2", e.addr)
	cfg := e.west.Gateway.ClientTLSConfig(e.east.GatewayID())
	cfg.NextProtos = []string{ALPNTunnel}
	tc := tls.Client(raw, cfg)
	_ = tc.SetDeadline(time.Now().Add(3 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake from 127.0.0.2: %v", err)
	}
	_ = tc.SetDeadline(time.Time{})
	sess, err := yamux.Client(tc, quietYamux(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.Ping(); err != nil {
		t.Fatalf("session from 127.0.0.2: %v", err)
	}
	// A finished handshake returns its share: 127.0.0.2 holds none now.
	testkit.EventuallyWithin(t, time.Second, "127.0.0.2 share released", func() bool {
		return e.srv.pendingFrom("127.0.0.2") == 0 && e.srv.pendingFrom("127.0.0.1") == 8
	})
}

func TestSourceKey(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 4143}, "127.0.0.1"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 1}, "10.0.0.1"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1"), Port: 443}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:bbbb::9"), Port: 44, Zone: "eth0"}, "2001:db8:1:2::/64"},
		{&net.UnixAddr{Name: "pipe"}, "pipe"},
	} {
		if got := sourceKey(tc.addr); got != tc.want {
			t.Errorf("sourceKey(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestClientHelloTimeout(t *testing.T) {
	lim := testLimits()
	lim.HandshakeTimeout = 5 * time.Second
	lim.ClientHelloTimeout = 200 * time.Millisecond
	e := newEnv(t, echoHandler{}, lim, nil)
	// Nothing at all, and a record header followed by silence.
	for i, prefix := range [][]byte{nil, {0x16, 0x03, 0x01, 0x02, 0x00}} {
		c := dialFrom(t, "127.0.0.1", e.addr)
		_, _ = c.Write(prefix)
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err := io.ReadAll(c)
		if elapsed := time.Since(start); elapsed > 2*time.Second || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("silent peer %d closed after %v (err %v), want about ClientHelloTimeout", i, elapsed, err)
		}
		testkit.EventuallyWithin(t, time.Second, "timeout counted", func() bool { return e.srvObs.rejects(ReasonHandshakeTimeout) == i+1 })
	}
	// A real handshake is unaffected by the short ClientHello bound.
	c, _ := e.client(t, e.west.Gateway, 1, testLimits())
	st, err := c.Open(openCtx(t), "east", target)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
}

// countedConn releases each slot once however often it is closed.
func TestCountedConnReleasesOnce(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	n := 0
	c := &countedConn{Conn: a}
	c.onClose(func() { n++ })
	c.onClose(func() { n += 10 })
	_ = c.Close()
	_ = c.Close()
	if n != 11 {
		t.Fatalf("releases ran to %d, want 11", n)
	}
	c.onClose(func() { n += 100 }) // registered after Close: runs at once
	if n != 111 {
		t.Fatalf("late release ran to %d, want 111", n)
	}
}

func TestH2ConnsPerCaller(t *testing.T) {
	lim := testLimits()
	lim.MaxH2ConnsPerCaller = 2
	sink := NewConnListener(nil, 8)
	e := newEnv(t, echoHandler{}, lim, sink)
	dialH2 := func() *tls.Conn {
		t.Helper()
		cfg := e.west.Controller.ClientTLSConfig(e.east.GatewayID())
		cfg.NextProtos = []string{ALPNH2}
		c, err := tls.Dial("tcp", e.addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	accept := func() net.Conn {
		t.Helper()
		got := make(chan net.Conn, 1)
		go func() {
			c, err := sink.Accept()
			if err == nil {
				got <- c
			}
		}()
		select {
		case c := <-got:
			return c
		case <-time.After(3 * time.Second):
			t.Fatal("no h2 conn reached the feed")
			return nil
		}
	}
	held := []net.Conn{}
	for range 2 {
		dialH2()
		held = append(held, accept())
	}
	// The third is closed by the server and never reaches the feed.
	extra := dialH2()
	_ = extra.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("over-limit h2 conn: %v, want closed", err)
	}
	testkit.EventuallyWithin(t, time.Second, "feed caller limit counted", func() bool { return e.srvObs.rejects(ReasonFeedCallerLimit) == 1 })
	testkit.EventuallyWithin(t, time.Second, "only the 2 admitted conns hold slots", func() bool { return e.srv.conns.Load() == 2 })
	// The feed closing a conn (twice: Close is idempotent) frees one slot.
	_ = held[0].Close()
	_ = held[0].Close()
	e.srv.mu.Lock()
	h2 := e.srv.h2PerCaller[e.west.ControllerID()]
	e.srv.mu.Unlock()
	if h2 != 1 || e.srv.conns.Load() != 1 {
		t.Fatalf("after close: %d h2 slots, %d connections; want 1 and 1", h2, e.srv.conns.Load())
	}
	// ... which a new connection can take.
	dialH2()
	held = append(held, accept())
	if n := e.srvObs.rejects(ReasonFeedCallerLimit); n != 1 {
		t.Fatalf("feed caller limit counted %d times, want 1", n)
	}
	for _, c := range held[1:] {
		_ = c.Close()
	}
}
