package identity_test

import (
	"crypto/tls"
	"net"
	"testing"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
)

// BenchmarkHandshake is one full TLS 1.3 mutual handshake between two
// gateways over an in-memory pipe, both sides running Ferry's verifier.
func BenchmarkHandshake(b *testing.B) {
	mesh := identitytest.NewMesh(b, "", "east", "west")
	east, west := mesh.Clusters["east"], mesh.Clusters["west"]
	srvCfg := east.Gateway.ServerTLSConfig(contract.AllowRemote("east", contract.GatewayServiceAccount))
	cliCfg := west.Gateway.ClientTLSConfig(east.GatewayID())
	b.ReportAllocs()
	for b.Loop() {
		c1, c2 := net.Pipe()
		srv := tls.Server(c1, srvCfg)
		cli := tls.Client(c2, cliCfg)
		errc := make(chan error, 1)
		go func() { errc <- srv.Handshake() }()
		if err := cli.Handshake(); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		c1.Close()
		c2.Close()
	}
}

// BenchmarkIssueLeaf is key generation plus signing of one gateway leaf.
func BenchmarkIssueLeaf(b *testing.B) {
	mesh := identitytest.NewMesh(b, "", "east")
	east := mesh.Clusters["east"]
	id := east.GatewayID()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := east.Issuer.IssueLeaf(id, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is Ferry's verification of one presented chain alone.
func BenchmarkVerify(b *testing.B) {
	mesh := identitytest.NewMesh(b, "", "east")
	east := mesh.Clusters["east"]
	raw := east.Leaf(b, east.GatewayID()).Certificate
	v := identity.Verifier{Bundle: mesh.Bundle, Role: identity.PeerClient}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.VerifyRaw(raw); err != nil {
			b.Fatal(err)
		}
	}
}
