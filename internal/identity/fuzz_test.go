package identity_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
)

// FuzzVerifyRaw feeds arbitrary DER to the verifier: it must never panic,
// never accept anything but the one genuine leaf in the corpus (the fuzzer
// cannot forge a signature), and always return one of its sentinels.
func FuzzVerifyRaw(f *testing.F) {
	mesh := identitytest.NewMesh(f, "", "east", "west")
	east := mesh.Clusters["east"]
	genuine := east.Leaf(f, east.GatewayID())
	f.Add(genuine.Certificate[0], east.Issuer.Cert.Raw)
	f.Add(east.ForgedLeaf(f, mesh.Clusters["west"].GatewayID()).Certificate[0], east.Issuer.Cert.Raw)
	f.Add(identitytest.Mint(f, identitytest.Spec{Parent: east.Issuer, URIs: []string{east.GatewayID().String() + "\x00x"}}).Certificate[0], east.Issuer.Cert.Raw)
	f.Add(identitytest.SelfSignedLeaf(f, east.GatewayID()).Certificate[0], []byte{})
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00}, []byte{})
	v := identity.Verifier{Bundle: mesh.Bundle, Role: identity.PeerClient}
	f.Fuzz(func(t *testing.T, leaf, inter []byte) {
		raw := [][]byte{leaf}
		if len(inter) > 0 {
			raw = append(raw, inter)
		}
		id, err := v.VerifyRaw(raw)
		if err == nil {
			if id != east.GatewayID() || string(leaf) != string(genuine.Certificate[0]) {
				t.Fatalf("accepted %v from non-genuine input", id)
			}
			return
		}
		for _, s := range matrixErrors {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("error %v matches no sentinel", err)
	})
}

// FuzzParseCertificatesPEM: the PEM reader must not panic, and must never
// let a non-certificate block through.
func FuzzParseCertificatesPEM(f *testing.F) {
	mesh := identitytest.NewMesh(f, "", "east")
	key, err := mesh.Root.KeyPEM()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mesh.Bundle.PEM())
	f.Add(append(mesh.Bundle.PEM(), key...))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := identity.ParseCertificatesPEM(data)
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificates")
		}
		if _, err := identity.ParseBundle("ferry.local", data); err == nil && len(certs) == 0 {
			t.Fatal("bundle accepted input with no certificates")
		}
	})
}

// FuzzParseRevoked reads a deny list as anyone who may write the Secrets
// that carry it could leave it. Whatever it accepts is within the limits
// and survives encoding and parsing again unchanged.
func FuzzParseRevoked(f *testing.F) {
	mesh := identitytest.NewMesh(f, "", "east")
	good := identity.EncodeRevoked([]identity.Revocation{identity.RevocationOf(mesh.Clusters["east"].Issuer.Cert, "cluster=east")})
	f.Add(good)
	f.Add([]byte("# only a comment\n\n"))
	f.Add([]byte("sha256:" + strings.Repeat("ab", 32) + " \x7f\n"))
	f.Add([]byte("sha256:" + strings.Repeat("AB", 32) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := identity.ParseRevoked(data)
		if err != nil {
			if !errors.Is(err, identity.ErrInvalidRevocation) && !errors.Is(err, identity.ErrTooManyRevoked) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if len(rs) > identity.MaxRevoked {
			t.Fatalf("accepted %d entries", len(rs))
		}
		again, err := identity.ParseRevoked(identity.EncodeRevoked(rs))
		if err != nil || !slices.Equal(again, rs) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, rs, again)
		}
	})
}
