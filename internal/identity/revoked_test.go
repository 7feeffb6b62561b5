package identity_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
)

func mustRevoke(t *testing.T, b *identity.Bundle, certs ...*x509.Certificate) *identity.Bundle {
	t.Helper()
	var rs []identity.Revocation
	for _, c := range certs {
		rs = append(rs, identity.RevocationOf(c, "test"))
	}
	out, err := b.WithRevoked(rs...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Revoking east's issuer refuses every east leaf with ErrRevoked, for both
// roles, while west, signed by the same root, is still accepted; and a
// re-issued issuer for east (a new key, as `ferry identity issuer --force`
// makes) is accepted: the list names keys, not clusters.
func TestRevokedIssuerIsRefused(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east", "west")
	east, west := mesh.Cluster(t, "east"), mesh.Cluster(t, "west")
	bundle := mustRevoke(t, mesh.Bundle, east.Issuer.Cert)
	now := time.Now()

	eastLeaf := east.Leaf(t, east.GatewayID())
	for _, role := range []identity.Role{identity.PeerServer, identity.PeerClient} {
		_, err := identity.Verifier{Bundle: bundle, Role: role}.VerifyRaw(eastLeaf.Certificate)
		assertOnly(t, err, identity.ErrRevoked)
		if !strings.Contains(err.Error(), east.Issuer.Cert.Subject.CommonName) {
			t.Errorf("error does not name the revoked certificate: %v", err)
		}
		// The same chain passes without the deny list: the refusal is the list's.
		if _, err := (identity.Verifier{Bundle: mesh.Bundle, Role: role}).VerifyRaw(eastLeaf.Certificate); err != nil {
			t.Fatalf("unrevoked bundle refuses east: %v", err)
		}
	}
	if _, err := identity.Verify(bundle, identity.PeerServer, chainOf(t, west.Leaf(t, west.GatewayID())), now); err != nil {
		t.Errorf("sibling issuer refused: %v", err)
	}
	reissued, err := mesh.Root.NewIssuer("east", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := reissued.IssueLeaf(east.GatewayID(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := identity.Verify(bundle, identity.PeerServer, chainOf(t, leaf), now); err != nil || id != east.GatewayID() {
		t.Errorf("re-issued east issuer: %v, %v", id, err)
	}
}

// A Source whose bundle gains a revocation refuses the revoked cluster on
// the next Verify of an existing chain: this is what lets live connections
// be re-checked when the bundle changes.
func TestSourceVerifierSeesNewDenyList(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east", "west")
	east := mesh.Cluster(t, "east")
	src := mesh.Cluster(t, "west").Gateway
	chain := chainOf(t, east.Leaf(t, east.GatewayID()))
	if _, err := src.Verifier(identity.PeerServer).Verify(chain); err != nil {
		t.Fatal(err)
	}
	if err := src.SetBundle(mustRevoke(t, mesh.Bundle, east.Issuer.Cert)); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Verifier(identity.PeerServer).Verify(chain); !errors.Is(err, identity.ErrRevoked) {
		t.Fatalf("after revocation: %v, want ErrRevoked", err)
	}
}

// The deny list is bounded: MaxRevoked entries are accepted, one more is
// refused (by WithRevoked and by ParseRevoked), and a bundle is never
// half-built.
func TestRevokedListBound(t *testing.T) {
	mesh := identitytest.NewMesh(t, "")
	rs := make([]identity.Revocation, identity.MaxRevoked+1)
	for i := range rs {
		rs[i].SPKISHA256[0], rs[i].SPKISHA256[1], rs[i].SPKISHA256[2] = byte(i), byte(i>>8), 1
	}
	b, err := mesh.Bundle.WithRevoked(rs[:identity.MaxRevoked]...)
	if err != nil || len(b.Revoked()) != identity.MaxRevoked {
		t.Fatalf("at the limit: %v", err)
	}
	if _, err := mesh.Bundle.WithRevoked(rs...); !errors.Is(err, identity.ErrTooManyRevoked) {
		t.Fatalf("over the limit: %v, want ErrTooManyRevoked", err)
	}
	if _, err := identity.ParseRevoked(identity.EncodeRevoked(rs)); !errors.Is(err, identity.ErrTooManyRevoked) {
		t.Fatalf("parse over the limit: %v, want ErrTooManyRevoked", err)
	}
	if len(mesh.Bundle.Revoked()) != 0 {
		t.Fatal("WithRevoked changed the bundle it was called on")
	}
}

// A root of the bundle cannot be revoked: that would refuse the whole mesh.
// Roots leave by a new bundle (docs/identity.md, root rotation).
func TestRevokingARootIsRefused(t *testing.T) {
	mesh := identitytest.NewMesh(t, "")
	if _, err := mesh.Bundle.WithRevoked(identity.RevocationOf(mesh.Root.Cert, "")); !errors.Is(err, identity.ErrRevokedRoot) {
		t.Fatalf("err = %v, want ErrRevokedRoot", err)
	}
}

// The text form round-trips, ignores comments and blank lines, merges
// duplicates, and refuses anything else with the line at fault.
func TestParseRevoked(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east", "west")
	a := identity.RevocationOf(mesh.Cluster(t, "east").Issuer.Cert, "cluster=east serial=01")
	b := identity.RevocationOf(mesh.Cluster(t, "west").Issuer.Cert, "")
	text := identity.EncodeRevoked([]identity.Revocation{a, b, a})
	got, err := identity.ParseRevoked(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("round trip: %+v", got)
	}
	if again := identity.EncodeRevoked(got); !bytes.Equal(again, text) && !bytes.Equal(again, identity.EncodeRevoked([]identity.Revocation{a, b})) {
		t.Fatalf("encoding not stable:\n%s\n%s", text, again)
	}
	if rs, err := identity.ParseRevoked(nil); err != nil || len(rs) != 0 {
		t.Fatalf("empty: %v %v", rs, err)
	}
	hex := fmt.Sprintf("%x", a.SPKISHA256)
	for name, in := range map[string]string{
		"no prefix":     hex + "\n",
		"short":         "sha256:" + hex[:63] + "\n",
		"upper case":    "sha256:" + strings.ToUpper(hex) + "\n",
		"not hex":       "sha256:" + strings.Repeat("zz", 32) + "\n",
		"control char":  "sha256:" + hex + " note\x00\n",
		"long note":     "sha256:" + hex + " " + strings.Repeat("n", identity.MaxRevocationNote+1) + "\n",
		"no space":      "sha256:" + hex + "note\n",
		"private key":   "-----BEGIN PRIVATE KEY-----\n",
		"invalid utf-8": "sha256:" + hex + " \xff\n",
	} {
		_, err := identity.ParseRevoked([]byte("# header\n\n" + in))
		if !errors.Is(err, identity.ErrInvalidRevocation) {
			t.Errorf("%s: err = %v, want ErrInvalidRevocation", name, err)
		} else if !strings.Contains(err.Error(), "line 3") {
			t.Errorf("%s: error does not name the line: %v", name, err)
		}
	}
}

func chainOf(t *testing.T, c *tls.Certificate) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, der := range c.Certificate {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	return out
}
