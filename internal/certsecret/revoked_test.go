package certsecret

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// A deny list added to the Secret reaches the Source's bundle without a new
// leaf; a malformed one that follows is refused and the list in force
// stays: nothing is un-revoked by a bad write.
func TestLoaderAppliesDenyList(t *testing.T) {
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "certsecret")
	mesh := identitytest.NewMesh(t, "", "east", "north")
	east, north := mesh.Cluster(t, "east"), mesh.Cluster(t, "north")
	data := leafData(t, east.Leaf(t, east.GatewayID()), mesh.Bundle)
	c.PutSecret(t, ns, contract.GatewayTLSSecret, data)
	l, _ := startLoader(t, c.Kube, Options{Namespace: ns, Expect: east.GatewayID()})
	testkit.Eventually(t, "ready", func() bool { return l.Ready() == nil })
	if l.Source().Bundle().IsRevoked(north.Issuer.Cert) {
		t.Fatal("north revoked before any deny list")
	}

	data[RevokedKey] = identity.EncodeRevoked([]identity.Revocation{identity.RevocationOf(north.Issuer.Cert, "cluster=north")})
	c.PutSecret(t, ns, contract.GatewayTLSSecret, data)
	testkit.Eventually(t, "north revoked", func() bool { return l.Source().Bundle().IsRevoked(north.Issuer.Cert) })
	northLeaf := north.Leaf(t, north.GatewayID())
	if _, err := l.Source().Verifier(identity.PeerClient).VerifyRaw(northLeaf.Certificate); err == nil {
		t.Fatal("north still verifies")
	}

	bad := map[string][]byte{CertKey: data[CertKey], KeyKey: data[KeyKey], BundleKey: data[BundleKey], RevokedKey: []byte("sha256:nothex\n")}
	c.PutSecret(t, ns, contract.GatewayTLSSecret, bad)
	testkit.Eventually(t, "malformed list refused", func() bool { return testutil.ToFloat64(l.metrics.rejected) == 1 })
	if !l.Source().Bundle().IsRevoked(north.Issuer.Cert) {
		t.Fatal("a malformed deny list un-revoked north")
	}
}
