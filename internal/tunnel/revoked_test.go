package tunnel

import (
	"io"
	"testing"
	"time"

	"ferry.dev/ferry/internal/identity"
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
