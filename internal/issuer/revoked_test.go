package issuer

import (
	"bytes"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// A deny list added to the issuer Secret reaches the controller's bundle
// and the gateway Secret without a new leaf; a malformed one makes the
// issuer unusable, and the list in force stays in both places.
func TestPropagatesDenyList(t *testing.T) {
	ctx := t.Context()
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "issuer")
	mesh := identitytest.NewMesh(t, "", "east", "north")
	east, north := mesh.Cluster(t, "east"), mesh.Cluster(t, "north")
	data := issuerData(t, east)
	c.PutSecret(t, ns, contract.IssuerSecret, data)
	r := start(t, c.Kube, Options{Namespace: ns})
	var s *corev1.Secret
	testkit.Eventually(t, "gateway Secret", func() bool { s = getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret); return s != nil })
	testkit.Eventually(t, "controller ready", func() bool { return r.Ready() == nil })
	serial := serialIn(t, s)

	list := identity.EncodeRevoked([]identity.Revocation{identity.RevocationOf(north.Issuer.Cert, "cluster=north")})
	data[certsecret.RevokedKey] = list
	c.PutSecret(t, ns, contract.IssuerSecret, data)
	testkit.Eventually(t, "deny list in the gateway Secret", func() bool {
		s = getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret)
		return bytes.Equal(s.Data[certsecret.RevokedKey], list)
	})
	if serialIn(t, s).Cmp(serial) != 0 {
		t.Fatal("a deny list change reissued the leaf")
	}
	testkit.Eventually(t, "deny list in the controller", func() bool { return r.Controller().Bundle().IsRevoked(north.Issuer.Cert) })

	data[certsecret.RevokedKey] = []byte("sha256:junk\n")
	c.PutSecret(t, ns, contract.IssuerSecret, data)
	waitEvent(t, ctx, c.Kube, ns, contract.IssuerSecret, EventIssuerInvalid)
	if !r.Controller().Bundle().IsRevoked(north.Issuer.Cert) {
		t.Fatal("a malformed deny list un-revoked north in the controller")
	}
	if s = getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret); !bytes.Equal(s.Data[certsecret.RevokedKey], list) {
		t.Fatal("a malformed deny list reached the gateway Secret")
	}
}
