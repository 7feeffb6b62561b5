package certsecret

import (
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
)

// FuzzParse reads a certificate Secret's data (deny list included), as whoever may write Secrets
// in ferry-system (or a broken issuer) could leave it. Parse never panics;
// what it accepts has a leaf, a key and a bundle, and Verify decides on it
// without panicking either.
func FuzzParse(f *testing.F) {
	mesh := identitytest.NewMesh(f, "", "east")
	east := mesh.Cluster(f, "east")
	good := leafData(f, east.Leaf(f, east.GatewayID()), mesh.Bundle)
	revoked := identity.EncodeRevoked([]identity.Revocation{identity.RevocationOf(mesh.Cluster(f, "east").Issuer.Cert, "cluster=east")})
	f.Add(good[CertKey], good[KeyKey], good[BundleKey], []byte(nil))
	f.Add(good[CertKey], good[KeyKey], []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), []byte(nil))
	f.Add([]byte("not pem"), good[KeyKey], good[BundleKey], []byte(nil))
	f.Add(good[CertKey], good[KeyKey], good[BundleKey], revoked)
	f.Add(good[CertKey], good[KeyKey], good[BundleKey], []byte("# c\nsha256:"+strings.Repeat("0", 64)+" n\n"))
	f.Add(good[CertKey], good[KeyKey], good[BundleKey], []byte("sha256:zz\n"))
	f.Fuzz(func(t *testing.T, cert, key, bundle, revoked []byte) {
		c, b, err := Parse(map[string][]byte{CertKey: cert, KeyKey: key, BundleKey: bundle, RevokedKey: revoked}, "ferry.local")
		if err != nil {
			return
		}
		if c == nil || c.Leaf == nil || c.PrivateKey == nil || b == nil {
			t.Fatalf("accepted without a leaf, key or bundle: %+v %v", c, b)
		}
		_, _ = Verify(c, b, east.GatewayID(), time.Now)
	})
}
