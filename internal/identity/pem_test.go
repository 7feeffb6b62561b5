package identity_test

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"strings"
	"testing"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
)

func TestLoadIssuerRoundTrip(t *testing.T) {
	mesh := identitytest.NewMesh(t, "corp.example", "east")
	issuer := mesh.Clusters["east"].Issuer
	keyPEM, err := issuer.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	loaded, bundle, err := identity.LoadIssuer(issuer.CertPEM(), keyPEM, mesh.Bundle.PEM())
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(issuer.Cert) || bundle.MeshDomain() != "corp.example" || !bundle.Contains(mesh.Root.Cert) {
		t.Fatalf("round trip lost data: mesh %q", bundle.MeshDomain())
	}
	// The loaded issuer must still be able to issue a verifiable leaf.
	leaf, err := loaded.IssueLeaf(contract.GatewayID("corp.example", "east"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (identity.Verifier{Bundle: bundle, Role: identity.PeerServer}).VerifyRaw(leaf.Certificate); err != nil {
		t.Fatal(err)
	}

	otherKey, _ := mesh.Root.KeyPEM()
	if _, _, err := identity.LoadIssuer(issuer.CertPEM(), otherKey, mesh.Bundle.PEM()); !errors.Is(err, identity.ErrKeyMismatch) {
		t.Errorf("mismatched key: %v", err)
	}
	foreign := identitytest.NewMesh(t, "corp.example")
	if _, _, err := identity.LoadIssuer(issuer.CertPEM(), keyPEM, foreign.Bundle.PEM()); !errors.Is(err, identity.ErrUnknownAuthority) {
		t.Errorf("foreign bundle: %v", err)
	}
	rootKey, _ := mesh.Root.KeyPEM()
	if _, _, err := identity.LoadIssuer(mesh.Root.CertPEM(), rootKey, mesh.Bundle.PEM()); !errors.Is(err, identity.ErrNotAnIssuer) {
		t.Errorf("root loaded as issuer: %v", err)
	}
}

func TestPEMRefusesKeysWhereCertificatesBelong(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east")
	keyPEM, _ := mesh.Root.KeyPEM()
	_, err := identity.ParseCertificatesPEM(append(mesh.Bundle.PEM(), keyPEM...))
	if !errors.Is(err, identity.ErrInvalidPEM) {
		t.Fatalf("key inside a bundle: %v", err)
	}
	d, kerr := mesh.Root.Key.(*ecdsa.PrivateKey).Bytes()
	if kerr != nil {
		t.Fatal(kerr)
	}
	if bytes.Contains([]byte(err.Error()), d) || strings.Contains(err.Error(), string(keyPEM[40:80])) {
		t.Fatal("error message quotes key material")
	}
	if _, err := identity.ParsePrivateKeyPEM(mesh.Bundle.PEM()); !errors.Is(err, identity.ErrInvalidPEM) {
		t.Errorf("certificate read as key: %v", err)
	}
	if _, err := identity.ParseCertificatesPEM([]byte("nothing here")); !errors.Is(err, identity.ErrInvalidPEM) {
		t.Errorf("empty input: %v", err)
	}
}

func TestLeafPEMRoundTrip(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east")
	east := mesh.Clusters["east"]
	leaf := east.Leaf(t, east.GatewayID())
	certPEM, keyPEM, err := identity.EncodeLeafPEM(leaf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := identity.ParseLeafPEM(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Certificate) != 2 || !got.Leaf.Equal(leaf.Leaf) {
		t.Fatal("chain lost in round trip")
	}
	src, err := identity.NewSource(got, mesh.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := src.ID(); err != nil || id != east.GatewayID() {
		t.Fatalf("source ID %v, %v", id, err)
	}
	other, _, _ := identity.EncodeLeafPEM(east.Leaf(t, east.GatewayID()))
	if _, err := identity.ParseLeafPEM(other, keyPEM); !errors.Is(err, identity.ErrKeyMismatch) {
		t.Errorf("half-rotated Secret: %v, want ErrKeyMismatch", err)
	}
}

func TestBundleValidation(t *testing.T) {
	mesh := identitytest.NewMesh(t, "ferry.local", "east")
	if _, err := identity.NewBundle("other.mesh", mesh.Root.Cert); !errors.Is(err, identity.ErrMeshMismatch) {
		t.Errorf("root of another mesh: %v", err)
	}
	if _, err := identity.NewBundle("ferry.local"); !errors.Is(err, identity.ErrNoBundle) {
		t.Errorf("empty bundle: %v", err)
	}
	leaf := mesh.Clusters["east"].Leaf(t, mesh.Clusters["east"].GatewayID())
	if _, err := identity.NewBundle("ferry.local", leaf.Leaf); !errors.Is(err, identity.ErrNotCA) {
		t.Errorf("leaf as root: %v", err)
	}
	b, err := identity.NewBundle("ferry.local", mesh.Root.Cert, mesh.Root.Cert)
	if err != nil || len(b.Roots()) != 1 {
		t.Errorf("duplicate roots: %v, %d roots", err, len(b.Roots()))
	}
}

func TestSourceRefusesMismatchedKey(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east")
	east := mesh.Clusters["east"]
	a, b := east.Leaf(t, east.GatewayID()), east.Leaf(t, east.GatewayID())
	before := east.Gateway.Certificate()
	a.PrivateKey = b.PrivateKey
	if err := east.Gateway.SetCertificate(a); !errors.Is(err, identity.ErrKeyMismatch) {
		t.Fatalf("SetCertificate with wrong key: %v", err)
	}
	if east.Gateway.Certificate() != before {
		t.Fatal("a refused certificate replaced the current one")
	}
	var empty identity.Source
	if _, err := empty.GetCertificate(nil); !errors.Is(err, identity.ErrSourceEmpty) {
		t.Errorf("empty source: %v", err)
	}
}
