package certsecret

import (
	"errors"
	"strings"
	"testing"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
)

func TestParseNamesTheKeyAtFault(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east")
	east := mesh.Cluster(t, "east")
	good := leafData(t, east.Leaf(t, east.GatewayID()), mesh.Bundle)
	for _, k := range []string{CertKey, KeyKey, BundleKey} {
		d := map[string][]byte{CertKey: good[CertKey], KeyKey: good[KeyKey], BundleKey: good[BundleKey]}
		d[k] = []byte("junk")
		_, _, err := Parse(d, mesh.Domain)
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s broken: %v", k, err)
		}
		if err != nil && strings.Contains(err.Error(), "junk") {
			t.Errorf("%s: error quotes the content: %v", k, err)
		}
	}
	if _, _, err := Parse(good, mesh.Domain); err != nil {
		t.Fatal(err)
	}
}

func TestFingerprint(t *testing.T) {
	a := map[string][]byte{CertKey: []byte("ab"), KeyKey: []byte("c"), BundleKey: []byte("d")}
	b := map[string][]byte{CertKey: []byte("a"), KeyKey: []byte("bc"), BundleKey: []byte("d")}
	if Fingerprint(a) == Fingerprint(b) {
		t.Fatal("moving a byte between keys kept the fingerprint")
	}
	a2 := map[string][]byte{CertKey: []byte("ab"), KeyKey: []byte("c"), BundleKey: []byte("d"), "other": []byte("x")}
	if Fingerprint(a) != Fingerprint(a2) {
		t.Fatal("an unrelated key changed the fingerprint")
	}
}

// revokedData is good Secret data whose deny list is text.
func revokedData(t *testing.T, text []byte) (map[string][]byte, *identitytest.Mesh) {
	t.Helper()
	mesh := identitytest.NewMesh(t, "", "east", "north")
	east := mesh.Cluster(t, "east")
	d := leafData(t, east.Leaf(t, east.GatewayID()), mesh.Bundle)
	d[RevokedKey] = text
	return d, mesh
}

// The deny list under revoked.txt becomes part of the parsed bundle; no
// key, or an empty one, is an empty list.
func TestParseReadsDenyList(t *testing.T) {
	d, mesh := revokedData(t, nil)
	north := mesh.Cluster(t, "north").Issuer.Cert
	d[RevokedKey] = identity.EncodeRevoked([]identity.Revocation{identity.RevocationOf(north, "cluster=north")})
	_, b, err := Parse(d, mesh.Domain)
	if err != nil {
		t.Fatal(err)
	}
	if !b.IsRevoked(north) || b.IsRevoked(mesh.Cluster(t, "east").Issuer.Cert) || len(b.Revoked()) != 1 {
		t.Fatalf("deny list not carried: %+v", b.Revoked())
	}
	delete(d, RevokedKey)
	if _, b, err := Parse(d, mesh.Domain); err != nil || len(b.Revoked()) != 0 {
		t.Fatalf("without %s: %v, %d entries", RevokedKey, err, len(b.Revoked()))
	}
}

// A malformed or oversized deny list refuses the whole Secret, naming the
// key and never quoting it, so the loader keeps the bundle in force.
func TestParseRefusesBadDenyList(t *testing.T) {
	var tooMany []identity.Revocation
	for i := range identity.MaxRevoked + 1 {
		var r identity.Revocation
		r.SPKISHA256[0], r.SPKISHA256[1] = byte(i), byte(i>>8)
		tooMany = append(tooMany, r)
	}
	for name, tc := range map[string]struct {
		text []byte
		want error
	}{
		"malformed":      {[]byte("sha256:secretjunk\n"), identity.ErrInvalidRevocation},
		"over the limit": {identity.EncodeRevoked(tooMany), identity.ErrTooManyRevoked},
	} {
		d, mesh := revokedData(t, tc.text)
		_, _, err := Parse(d, mesh.Domain)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), RevokedKey) {
			t.Errorf("%s: err = %v, want %v naming %s", name, err, tc.want, RevokedKey)
		}
		if err != nil && strings.Contains(err.Error(), "secretjunk") {
			t.Errorf("%s: error quotes the content: %v", name, err)
		}
	}
	// A list that revokes the root is refused as well.
	d, mesh := revokedData(t, nil)
	d[RevokedKey] = identity.EncodeRevoked([]identity.Revocation{identity.RevocationOf(mesh.Root.Cert, "")})
	if _, _, err := Parse(d, mesh.Domain); !errors.Is(err, identity.ErrRevokedRoot) {
		t.Errorf("root revoked: %v", err)
	}
}

// A Secret whose own leaf chains through a revoked issuer is refused by
// Verify: loading it would leave the gateway refused by its own peers.
func TestVerifyRefusesOwnRevokedIssuer(t *testing.T) {
	d, mesh := revokedData(t, nil)
	east := mesh.Cluster(t, "east")
	d[RevokedKey] = identity.EncodeRevoked([]identity.Revocation{identity.RevocationOf(east.Issuer.Cert, "")})
	c, b, err := Parse(d, mesh.Domain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(c, b, east.GatewayID(), nil); !errors.Is(err, identity.ErrRevoked) {
		t.Fatalf("err = %v, want ErrRevoked", err)
	}
}
