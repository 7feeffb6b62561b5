package identity_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
	"time"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
)

// matrixErrors are the sentinels of the bad-certificate matrix; a case
// passes only if its error is its own sentinel and none of the others.
var matrixErrors = []error{
	identity.ErrNoCertificate, identity.ErrSelfSigned, identity.ErrLeafIsCA, identity.ErrUnknownAuthority,
	identity.ErrExpired, identity.ErrNotYetValid, identity.ErrMissingEKU, identity.ErrNoURISAN,
	identity.ErrMultipleURISANs, identity.ErrUnexpectedSAN, identity.ErrNULInSAN, identity.ErrNotSPIFFE,
	identity.ErrInvalidID, identity.ErrWrongMesh, identity.ErrTrustDomainNotPermitted, identity.ErrChainTooDeep,
	identity.ErrKeyTooLarge, identity.ErrWeakKey, identity.ErrUnsupportedKey, identity.ErrMalformedCertificate,
	identity.ErrInvalidChain, identity.ErrRevoked,
}

func assertOnly(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
	for _, other := range matrixErrors {
		if other != want && errors.Is(err, other) { //nolint:errorlint // compares two sentinels, not an error to one
			t.Fatalf("error %q also matches %v; each rejection needs its own error", err, other)
		}
	}
}

func TestVerifyBadCertificateMatrix(t *testing.T) {
	mesh := identitytest.NewMesh(t, "ferry.local", "east", "west")
	east, west := mesh.Clusters["east"], mesh.Clusters["west"]
	foreign := identitytest.NewMesh(t, "ferry.local", "east").Clusters["east"]
	otherMesh := identitytest.NewMesh(t, "other.mesh", "east").Clusters["east"]
	id := east.GatewayID()
	uri := id.String()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	smallRSA := &rsa.PublicKey{N: new(big.Int).SetBit(big.NewInt(1), 1023, 1), E: 65537}
	// A rogue intermediate without constraints, and the root signing a leaf
	// directly: crypto/x509 accepts both (the root's ".ferry.local"
	// constraint covers east), so only Ferry's issuer check stops them.
	rogue := identitytest.Mint(t, identitytest.Spec{Parent: mesh.Root, IsCA: true, NoExtKeyUsage: true})
	rogueCA := &identity.CA{Cert: rogue.Leaf, Key: rogue.PrivateKey.(crypto.Signer)}
	viaRogue := identitytest.Mint(t, identitytest.Spec{Parent: rogueCA, URIs: []string{uri}})
	mint := func(s identitytest.Spec) *tls.Certificate {
		if s.Parent == nil {
			s.Parent = east.Issuer
		}
		return identitytest.Mint(t, s)
	}

	cases := []struct {
		name string
		cert *tls.Certificate
		role identity.Role
		want error
	}{
		{"no certificate", &tls.Certificate{}, identity.PeerClient, identity.ErrNoCertificate},
		{"self-signed", identitytest.SelfSignedLeaf(t, id), identity.PeerClient, identity.ErrSelfSigned},
		{"foreign root", foreign.Leaf(t, id), identity.PeerClient, identity.ErrUnknownAuthority},
		{"expired", east.ExpiredLeaf(t, id), identity.PeerClient, identity.ErrExpired},
		{"not yet valid", east.NotYetValidLeaf(t, id), identity.PeerClient, identity.ErrNotYetValid},
		{"client without clientAuth", east.LeafWithEKU(t, id, x509.ExtKeyUsageServerAuth), identity.PeerClient, identity.ErrMissingEKU},
		{"server without serverAuth", east.LeafWithEKU(t, id, x509.ExtKeyUsageClientAuth), identity.PeerServer, identity.ErrMissingEKU},
		{"no EKU at all", east.LeafWithEKU(t, id), identity.PeerServer, identity.ErrMissingEKU},
		{"two URI SANs", mint(identitytest.Spec{URIs: []string{uri, east.ControllerID().String()}}), identity.PeerClient, identity.ErrMultipleURISANs},
		{"raw NUL in URI SAN", mint(identitytest.Spec{URIs: []string{uri + "\x00.west.ferry.local"}}), identity.PeerClient, identity.ErrNULInSAN},
		{"encoded NUL in URI SAN", mint(identitytest.Spec{URIs: []string{"spiffe://east.ferry.local/ns/a%00b/sa/c"}}), identity.PeerClient, identity.ErrNULInSAN},
		{"NUL in DNS SAN", mint(identitytest.Spec{URIs: []string{uri}, DNSNames: []string{"east.ferry.local\x00.evil.example"}}), identity.PeerClient, identity.ErrNULInSAN},
		{"non-SPIFFE URI", mint(identitytest.Spec{URIs: []string{"https://east.ferry.local/ns/ferry-system/sa/ferry-gateway"}}), identity.PeerClient, identity.ErrNotSPIFFE},
		{"wrong trust domain for issuer", east.ForgedLeaf(t, west.GatewayID()), identity.PeerClient, identity.ErrTrustDomainNotPermitted},
		{"unconstrained intermediate", viaRogue, identity.PeerClient, identity.ErrTrustDomainNotPermitted},
		{"leaf signed by the root", identitytest.Mint(t, identitytest.Spec{Parent: mesh.Root, URIs: []string{uri}}), identity.PeerClient, identity.ErrTrustDomainNotPermitted},
		{"over-deep chain presented", east.DeepChainLeaf(t, id, 2), identity.PeerClient, identity.ErrChainTooDeep},
		{"over-deep chain verified", east.DeepChainLeaf(t, id, 1), identity.PeerClient, identity.ErrChainTooDeep},
		{"RSA key far too large", east.HugeRSALeaf(t, id, 16384), identity.PeerClient, identity.ErrKeyTooLarge},
		{"RSA key too small", mint(identitytest.Spec{URIs: []string{uri}, PublicKey: smallRSA}), identity.PeerClient, identity.ErrWeakKey},
		{"P-521 key", mint(identitytest.Spec{URIs: []string{uri}, PublicKey: p521.Public()}), identity.PeerClient, identity.ErrUnsupportedKey},
		{"no URI SAN", mint(identitytest.Spec{DNSNames: []string{"east.ferry.local"}}), identity.PeerClient, identity.ErrNoURISAN},
		{"DNS SAN beside the URI", mint(identitytest.Spec{URIs: []string{uri}, DNSNames: []string{"east.ferry.local"}}), identity.PeerClient, identity.ErrUnexpectedSAN},
		{"leaf is a CA", mint(identitytest.Spec{URIs: []string{uri}, IsCA: true}), identity.PeerClient, identity.ErrLeafIsCA},
		{"other mesh", otherMesh.Leaf(t, contract.GatewayID("other.mesh", "east")), identity.PeerClient, identity.ErrWrongMesh},
		{"not a Ferry path", mint(identitytest.Spec{URIs: []string{"spiffe://east.ferry.local/workload"}}), identity.PeerClient, identity.ErrInvalidID},
		{"garbage DER", &tls.Certificate{Certificate: [][]byte{[]byte("not a certificate")}}, identity.PeerClient, identity.ErrMalformedCertificate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := identity.Verifier{Bundle: mesh.Bundle, Role: tc.role}
			got, err := v.VerifyRaw(tc.cert.Certificate)
			if err == nil {
				t.Fatalf("accepted %s; want %v", got, tc.want)
			}
			assertOnly(t, err, tc.want)
			t.Logf("rejected: %v", err)
		})
	}

	// The same verifier accepts well-formed leaves, in both roles and with
	// P-384, so the rejections above are about the defect and nothing else.
	good := []*tls.Certificate{east.Leaf(t, id), mint(identitytest.Spec{URIs: []string{uri}, PublicKey: p384.Public()})}
	for i, c := range good {
		for _, role := range []identity.Role{identity.PeerClient, identity.PeerServer} {
			got, err := identity.Verifier{Bundle: mesh.Bundle, Role: role}.VerifyRaw(c.Certificate)
			if err != nil || got != id {
				t.Errorf("good cert %d as %s: got %v, %v; want %v", i, role, got, err, id)
			}
		}
	}
}

func TestVerifyUsesInjectedClock(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east")
	east := mesh.Clusters["east"]
	leaf := east.Leaf(t, east.GatewayID())
	for _, tc := range []struct {
		at   time.Time
		want error
	}{
		{leaf.Leaf.NotBefore.Add(time.Second), nil},
		{leaf.Leaf.NotAfter.Add(time.Second), identity.ErrExpired},
		{leaf.Leaf.NotBefore.Add(-time.Second), identity.ErrNotYetValid},
	} {
		_, err := identity.Verify(mesh.Bundle, identity.PeerServer, []*x509.Certificate{leaf.Leaf, east.Issuer.Cert}, tc.at)
		if !errors.Is(err, tc.want) {
			t.Errorf("at %s: err = %v, want %v", tc.at, err, tc.want)
		}
	}
}

func TestVerifyMisuse(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east")
	leaf := mesh.Clusters["east"].Leaf(t, mesh.Clusters["east"].GatewayID())
	if _, err := (identity.Verifier{Role: identity.PeerClient}).VerifyRaw(leaf.Certificate); !errors.Is(err, identity.ErrNoBundle) {
		t.Errorf("no bundle: %v", err)
	}
	if _, err := (identity.Verifier{Bundle: mesh.Bundle}).VerifyRaw(leaf.Certificate); err == nil {
		t.Error("a verifier without a role must not accept: the role decides the EKU")
	}
}
