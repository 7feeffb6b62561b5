package tunnel

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// trustCheck is the TrustCheckInterval of these tests; a peer that stops
// verifying must be closed within it (plus scheduling on a busy machine).
const trustCheck = 200 * time.Millisecond

// twoRoots is a mesh whose clusters east and west have issuers under one
// root and north under another; every Source trusts both roots. It returns
// the clusters and the bundle of the first root alone.
func twoRoots(t *testing.T) (east, west, north *identitytest.Cluster, firstOnly *identity.Bundle) {
	a := identitytest.NewMesh(t, "", "east", "west")
	b := identitytest.NewMesh(t, "", "north")
	both, err := identity.NewBundle(a.Domain, a.Root.Cert, b.Root.Cert)
	if err != nil {
		t.Fatal(err)
	}
	east, west, north = a.Cluster(t, "east"), a.Cluster(t, "west"), b.Cluster(t, "north")
	for _, c := range []*identitytest.Cluster{east, west, north} {
		for _, s := range []*identity.Source{c.Gateway, c.Controller} {
			if err := s.SetBundle(both); err != nil {
				t.Fatal(err)
			}
		}
	}
	return east, west, north, a.Bundle
}

func lifetimeLimits() Limits {
	lim := testLimits()
	lim.TrustCheckInterval = trustCheck
	return lim
}

// serve starts an ingress server for local with src and returns its address.
func serve(t *testing.T, local identity.ID, src *identity.Source, h StreamHandler, lim Limits, h2 *ConnListener) (*Server, *recorder, string) {
	t.Helper()
	obs := newRecorder()
	srv, err := NewServer(ServerOptions{Local: local, TLS: src, Handler: h, H2: h2, Limits: lim, Observer: obs, Logger: testkit.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv, obs, ln.Addr().String()
}

// newClient returns a client with src and the given remotes.
func newClient(t *testing.T, src *identity.Source, lim Limits, remotes map[string]Remote) *Client {
	t.Helper()
	c, err := NewClient(ClientOptions{
		TLS: src, Limits: lim, PoolSize: 1, DialTimeout: time.Second,
		MaxBackoff: 200 * time.Millisecond, Logger: testkit.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.SetRemotes(remotes)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// openEcho opens a stream to cluster and checks one round trip on it.
func openEcho(t *testing.T, c *Client, cluster string) *Stream {
	t.Helper()
	st, err := c.Open(openCtx(t), cluster, target)
	if err != nil {
		t.Fatalf("open to %s: %v", cluster, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	roundTrip(t, st)
	return st
}

func roundTrip(t *testing.T, st io.ReadWriter) {
	t.Helper()
	if _, err := st.Write([]byte("ping")); err != nil {
		t.Fatalf("write: %v", err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(st, b); err != nil || string(b) != "ping" {
		t.Fatalf("echo: %q, %v", b, err)
	}
}

// closedWithin waits for r to end, and fails the test if that takes d.
func closedWithin(t *testing.T, what string, r io.Reader, d time.Duration) {
	t.Helper()
	if c, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok {
		_ = c.SetReadDeadline(time.Now().Add(d))
	}
	start := time.Now()
	_, _ = io.Copy(io.Discard, r)
	// Not the error: a stream of a session that died also reads as a
	// timeout (its deadline is expired to release readers).
	if time.Since(start) >= d {
		t.Fatalf("%s still open after %v", what, d)
	}
	t.Logf("%s closed after %v", what, time.Since(start))
}

// Dropping a root from the bundle closes the live tunnel session and feed
// connection of the cluster under it within TrustCheckInterval, on the
// ingress side, while the other cluster's keep carrying traffic.
func TestBundleChangeClosesUntrustedInbound(t *testing.T) {
	east, west, north, firstOnly := twoRoots(t)
	l := liveInto(t, east, west, north)
	if err := east.Gateway.SetBundle(firstOnly); err != nil {
		t.Fatal(err)
	}
	l.northCutOff(t, north)
}

// live is west's and north's live connections into east's gateway: a
// tunnel stream and a feed connection each.
type live struct {
	srv                 *Server
	obs                 *recorder
	fromWest, fromNorth *Stream
	northClient         *Client
	westH2, northH2     *tls.Conn
}

func liveInto(t *testing.T, east, west, north *identitytest.Cluster) live {
	t.Helper()
	sink := NewConnListener(nil, 8)
	var l live
	var addr string
	l.srv, l.obs, addr = serve(t, east.GatewayID(), east.Gateway, echoHandler{}, lifetimeLimits(), sink)
	remotes := map[string]Remote{"east": {Addresses: []string{addr}, Identity: east.GatewayID()}}
	l.fromWest = openEcho(t, newClient(t, west.Gateway, testLimits(), remotes), "east")
	l.northClient = newClient(t, north.Gateway, testLimits(), remotes)
	l.fromNorth = openEcho(t, l.northClient, "east")
	l.westH2, l.northH2 = dialH2(t, west, east, addr, sink), dialH2(t, north, east, addr, sink)
	return l
}

// northCutOff checks that, once east stops trusting north, north's tunnel
// stream, session and feed connection close within the bound
// (TrustCheckInterval) and north cannot come back, while west's carry on.
func (l live) northCutOff(t *testing.T, north *identitytest.Cluster) {
	t.Helper()
	bound := trustCheck + 2*time.Second // scheduling on a busy machine
	closedWithin(t, "north's tunnel stream", l.fromNorth, bound)
	closedWithin(t, "north's feed connection", l.northH2, bound)
	testkit.EventuallyWithin(t, bound, "north's session gone", func() bool {
		l.srv.mu.Lock()
		defer l.srv.mu.Unlock()
		return l.srv.perCaller[north.GatewayID()] == 0
	})
	if n := l.obs.rejects(ReasonPeerUntrusted); n < 2 {
		t.Fatalf("untrusted live peers counted %d times, want 2 (tunnel and feed)", n)
	}
	if _, err := l.northClient.Open(openCtx(t), "east", target); err == nil {
		t.Fatal("north opened a stream after east stopped trusting it")
	}
	roundTrip(t, l.fromWest)
	roundTrip(t, l.westH2)
}

// dialH2 connects from cluster c's controller to the server at addr and
// returns the client side of a conn the feed listener received, after one
// echoed round trip through it.
func dialH2(t *testing.T, c, server *identitytest.Cluster, addr string, sink *ConnListener) *tls.Conn {
	t.Helper()
	cfg := c.Controller.ClientTLSConfig(server.GatewayID())
	cfg.NextProtos = []string{ALPNH2}
	tc, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tc.Close() })
	got := make(chan net.Conn, 1)
	go func() {
		if sc, err := sink.Accept(); err == nil {
			got <- sc
		}
	}()
	select {
	case sc := <-got:
		t.Cleanup(func() { _ = sc.Close() })
		go func() { _, _ = io.Copy(sc, sc) }() // the feed, played by an echo
	case <-time.After(3 * time.Second):
		t.Fatal("no h2 conn reached the feed")
	}
	roundTrip(t, tc)
	return tc
}

// Dropping a root from the egress side's bundle closes its session to the
// remote gateway under that root; its session to another remote carries on.
func TestBundleChangeClosesUntrustedOutbound(t *testing.T) {
	east, west, north, firstOnly := twoRoots(t)
	_, _, eastAddr := serve(t, east.GatewayID(), east.Gateway, echoHandler{}, testLimits(), nil)
	_, _, northAddr := serve(t, north.GatewayID(), north.Gateway, echoHandler{}, testLimits(), nil)
	c := newClient(t, west.Gateway, lifetimeLimits(), map[string]Remote{
		"east":  {Addresses: []string{eastAddr}, Identity: east.GatewayID()},
		"north": {Addresses: []string{northAddr}, Identity: north.GatewayID()},
	})
	toEast, toNorth := openEcho(t, c, "east"), openEcho(t, c, "north")

	if err := west.Gateway.SetBundle(firstOnly); err != nil {
		t.Fatal(err)
	}
	closedWithin(t, "the stream to north", toNorth, trustCheck+2*time.Second)
	testkit.EventuallyWithin(t, 2*time.Second, "north down", func() bool { return !c.Live("north") })
	roundTrip(t, toEast)
	openEcho(t, c, "east")
}

// A session is closed at the peer's certificate's NotAfter at the latest,
// on both sides, though nothing else changed.
func TestSessionEndsWhenPeerCertificateExpires(t *testing.T) {
	m := identitytest.NewMesh(t, "", "east", "west")
	east, west := m.Cluster(t, "east"), m.Cluster(t, "west")
	leaf, err := west.Issuer.IssueLeaf(west.GatewayID(), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	src, err := identity.NewSource(leaf, m.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	lim := lifetimeLimits()
	lim.MaxConnectionAgeGrace = time.Second // retired 1 s before NotAfter
	_, obs, addr := serve(t, east.GatewayID(), east.Gateway, echoHandler{}, lim, nil)
	c := newClient(t, src, testLimits(), map[string]Remote{"east": {Addresses: []string{addr}, Identity: east.GatewayID()}})
	st := openEcho(t, c, "east")
	notAfter := leaf.Leaf.NotAfter
	closedWithin(t, "the session of an expiring peer", st, time.Until(notAfter)+2*time.Second)
	if now := time.Now(); now.Before(notAfter.Add(-lim.MaxConnectionAgeGrace)) {
		t.Fatalf("closed at %v, long before the grace before NotAfter %v", now, notAfter)
	}
	testkit.EventuallyWithin(t, time.Second, "expiry counted", func() bool { return obs.rejects(ReasonPeerExpired) == 1 })
}

// At MaxConnectionAge ingress retires the session: the running stream carries on,
// egress moves new streams to a new session without failing one, and the
// old session closes when its last stream ends.
func TestMaxConnectionAgeIsGraceful(t *testing.T) {
	lim := testLimits()
	lim.MaxConnectionAge = 300 * time.Millisecond
	lim.MaxConnectionAgeGrace = time.Minute
	e := newEnv(t, echoHandler{}, lim, nil)
	c, _ := e.client(t, e.west.Gateway, 1, testLimits())
	agesGracefully(t, c)
}

// Egress retires its own sessions at MaxConnectionAge the same way.
func TestClientMaxConnectionAge(t *testing.T) {
	e := newEnv(t, echoHandler{}, testLimits(), nil)
	lim := testLimits()
	lim.MaxConnectionAge = 300 * time.Millisecond
	lim.MaxConnectionAgeGrace = time.Minute
	c, _ := e.client(t, e.west.Gateway, 1, lim)
	agesGracefully(t, c)
}

// agesGracefully checks, on c's only session to east, that a session that
// reaches its age is retired as a renewal retires it (movesOff).
func agesGracefully(t *testing.T, c *Client) {
	t.Helper()
	movesOff(t, c, func() {})
}

func TestLifetimeSchedule(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const age, grace = time.Hour, 15 * time.Minute
	at := func(d time.Duration) time.Time { return now.Add(d) }
	for _, tc := range []struct {
		name        string
		exp         time.Time
		retire, cut time.Time
		reason      string
	}{
		{"no expiry known", time.Time{}, at(age), at(age + grace), reasonAge},
		{"expires long after", at(24 * time.Hour), at(age), at(age + grace), reasonAge},
		{"expires within the grace after the age", at(age + 10*time.Minute), at(age - 5*time.Minute), at(age + 10*time.Minute), ReasonPeerExpired},
		{"expires before the age", at(30 * time.Minute), at(15 * time.Minute), at(30 * time.Minute), ReasonPeerExpired},
		// Made in the last grace before expiry: no early retirement (the
		// replacement would be just as old), cut at expiry.
		{"expires within the grace from now", at(10 * time.Minute), at(age), at(10 * time.Minute), ReasonPeerExpired},
	} {
		retire, cut, reason := schedule(now, age, grace, tc.exp)
		if !retire.Equal(tc.retire) || !cut.Equal(tc.cut) || reason != tc.reason {
			t.Errorf("%s: retire %v, cut %v (%s); want %v, %v (%s)", tc.name,
				retire.Sub(now), cut.Sub(now), reason, tc.retire.Sub(now), tc.cut.Sub(now), tc.reason)
		}
	}
}
