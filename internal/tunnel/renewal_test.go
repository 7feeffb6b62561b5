package tunnel

import (
	"crypto/tls"
	"crypto/x509"
	"sync/atomic"
	"testing"
	"time"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// renew gives src a fresh leaf for id from the same issuer, as the
// controller's rotation does.
func renew(t *testing.T, src *identity.Source, leaf *tls.Certificate) {
	t.Helper()
	if err := src.SetCertificate(leaf); err != nil {
		t.Fatal(err)
	}
}

// movesOff checks, on c's only session to east, that after retire (run
// once a stream is open: a renewal, or nothing while the session ages)
// every new stream succeeds and soon lands on a new session, that the
// stream opened before keeps working, and that the old session closes once
// that stream ends: retiring never cuts.
func movesOff(t *testing.T, c *Client, retire func()) {
	t.Helper()
	old := openEcho(t, c, "east")
	oldSess := old.Stream.Session()
	retire()
	testkit.EventuallyWithin(t, trustCheck+5*time.Second, "a stream on a new session", func() bool {
		st := openEcho(t, c, "east") // fails the test if any open fails
		defer st.Close()
		return st.Stream.Session() != oldSess
	})
	roundTrip(t, old)
	if oldSess.IsClosed() {
		t.Fatal("the old session closed while a stream ran on it")
	}
	_ = old.Close()
	testkit.EventuallyWithin(t, 2*time.Second, "the old session closed once idle", oldSess.IsClosed)
	openEcho(t, c, "east")
}

// When egress's own certificate is renewed, its sessions move to the new
// certificate by themselves: otherwise a session made with a leaf of an old
// root outlives a trust rotation and is cut when the peer drops that root.
func TestRenewalRetiresOutboundSessions(t *testing.T) {
	e := newEnv(t, echoHandler{}, testLimits(), nil)
	c, _ := e.client(t, e.west.Gateway, 1, lifetimeLimits())
	movesOff(t, c, func() { renew(t, e.west.Gateway, e.west.Leaf(t, e.west.GatewayID())) })
	if n := e.srvObs.rejects(ReasonPeerUntrusted) + e.srvObs.rejects(ReasonPeerExpired); n != 0 {
		t.Fatalf("the ingress rejected %d live sessions; a renewal rejects none", n)
	}
}

// Ingress does the same with its sessions when its certificate is renewed:
// egress gets "draining" for new streams and moves them to a new session.
func TestRenewalRetiresInboundSessions(t *testing.T) {
	e := newEnv(t, echoHandler{}, lifetimeLimits(), nil)
	c, _ := e.client(t, e.west.Gateway, 1, testLimits())
	movesOff(t, c, func() { renew(t, e.east.Gateway, e.east.Leaf(t, e.east.GatewayID())) })
}

// countingTrust is a TrustSource whose certificate the test swaps, and
// which counts the guard's looks at it.
type countingTrust struct {
	*identity.Source
	looks atomic.Int64
}

func (c *countingTrust) Certificate() *tls.Certificate {
	c.looks.Add(1)
	return c.Source.Certificate()
}

// A certificate handed over again unchanged (a new pointer to the same leaf,
// as a resync of the Secret gives) retires nothing, however often the guard
// looks; a new leaf retires once.
func TestGuardRetiresOnNewLeafOnly(t *testing.T) {
	e := newEnv(t, echoHandler{}, testLimits(), nil)
	trust := &countingTrust{Source: e.west.Gateway}
	var retired atomic.Int64
	done := make(chan struct{})
	defer close(done)
	var chain []*x509.Certificate
	for _, der := range e.east.Gateway.Certificate().Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	go guard{
		lt: lifetimeLimits().Lifetime, trust: trust, role: identity.PeerServer, chain: chain,
		own:    e.west.Gateway.Certificate(),
		retire: func() { retired.Add(1) }, cut: func(string) { t.Error("cut") },
		done: done, log: testkit.Logger(),
	}.run()
	again := *e.west.Gateway.Certificate()
	renew(t, e.west.Gateway, &again)
	seen := trust.looks.Load()
	testkit.EventuallyWithin(t, 10*time.Second, "three looks at the certificate", func() bool { return trust.looks.Load() >= seen+3 })
	if n := retired.Load(); n != 0 {
		t.Fatalf("an unchanged leaf retired the connection %d times", n)
	}
	renew(t, e.west.Gateway, e.west.Leaf(t, e.west.GatewayID()))
	testkit.EventuallyWithin(t, 10*time.Second, "retired", func() bool { return retired.Load() == 1 })
	seen = trust.looks.Load()
	testkit.EventuallyWithin(t, 10*time.Second, "three more looks", func() bool { return trust.looks.Load() >= seen+3 })
	if n := retired.Load(); n != 1 {
		t.Fatalf("retired %d times, want once", n)
	}
}

func TestSameLeaf(t *testing.T) {
	a := &tls.Certificate{Certificate: [][]byte{{1, 2}}}
	b := &tls.Certificate{Certificate: [][]byte{{1, 2}}}
	c := &tls.Certificate{Certificate: [][]byte{{3}}}
	for _, tc := range []struct {
		name string
		x, y *tls.Certificate
		want bool
	}{
		{"same pointer", a, a, true},
		{"same leaf, new pointer", a, b, true},
		{"another leaf", a, c, false},
		{"loaded since", nil, a, false},
		{"both unloaded", nil, nil, true},
	} {
		if got := sameLeaf(tc.x, tc.y); got != tc.want {
			t.Errorf("%s: sameLeaf = %v, want %v", tc.name, got, tc.want)
		}
	}
}
