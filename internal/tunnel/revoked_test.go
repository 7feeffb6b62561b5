package tunnel

import (
	"io"
	"testing"
	"time"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// Once east's bundle revokes west's issuer, a new handshake from west's
// gateway is refused and counted as an untrusted peer, while north, whose
// issuer the same root signed, still opens streams.
func TestRevokedClusterHandshakeRefused(t *testing.T) {
	e := newEnv(t, echoHandler{}, testLimits(), nil)
	north := e.mesh.AddCluster(t, "north")
	revoked, err := e.east.Gateway.Bundle().WithRevoked(identity.RevocationOf(e.west.Issuer.Cert, "cluster=west"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.east.Gateway.SetBundle(revoked); err != nil {
		t.Fatal(err)
	}

	before := e.srvObs.rejects(ReasonUntrustedPeer)
	westCfg := e.west.Gateway.ClientTLSConfig(e.east.GatewayID())
	westCfg.NextProtos = []string{ALPNTunnel}
	if err := dialTLS(t, e.addr, westCfg); err == nil {
		t.Fatal("east kept a connection from revoked west open")
	}
	testkit.EventuallyWithin(t, 2*time.Second, "west's handshake counted as untrusted_peer", func() bool {
		return e.srvObs.rejects(ReasonUntrustedPeer) == before+1
	})

	c, _ := e.client(t, north.Gateway, 1, testLimits())
	st, err := c.Open(openCtx(t), "east", target)
	if err != nil {
		t.Fatalf("north refused: %v", err)
	}
	defer st.Close()
	if _, err := st.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseWrite()
	if got, err := io.ReadAll(st); err != nil || string(got) != "hi" {
		t.Fatalf("north echo: %q, %v", got, err)
	}
}

// TestRevokingAClusterClosesItsLiveConnections is issue 11, finding 6, end
// to end in the transport: east, west and north share one mesh root; north
// has a live tunnel and a live feed connection to east. East adds north's
// issuer key to its deny list (a new bundle, as the issuer Secret's
// revoked.txt delivers it): north's tunnel and feed connection close within
// TrustCheckInterval (the named bound), north cannot come back, and west's
// connections carry on. No root is rotated.
func TestRevokingAClusterClosesItsLiveConnections(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east", "west", "north")
	east, west, north := mesh.Cluster(t, "east"), mesh.Cluster(t, "west"), mesh.Cluster(t, "north")
	l := liveInto(t, east, west, north)
	revoked, err := east.Gateway.Bundle().WithRevoked(identity.RevocationOf(north.Issuer.Cert, "cluster=north"))
	if err != nil {
		t.Fatal(err)
	}
	if err := east.Gateway.SetBundle(revoked); err != nil {
		t.Fatal(err)
	}
	l.northCutOff(t, north)
}
