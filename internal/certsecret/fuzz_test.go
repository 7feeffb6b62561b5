package certsecret

import (
	"testing"
	"time"

	"ferry.dev/ferry/internal/identity/identitytest"
)

// FuzzParse reads a certificate Secret's data, as whoever may write Secrets
// in ferry-system (or a broken issuer) could leave it. Parse never panics;
// what it accepts has a leaf, a key and a bundle, and Verify decides on it
// without panicking either.
func FuzzParse(f *testing.F) {
	mesh := identitytest.NewMesh(f, "", "east")
	east := mesh.Cluster(f, "east")
	good := leafData(f, east.Leaf(f, east.GatewayID()), mesh.Bundle)
	f.Add(good[CertKey], good[KeyKey], good[BundleKey])
	f.Add(good[CertKey], good[KeyKey], []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("not pem"), good[KeyKey], good[BundleKey])
	f.Fuzz(func(t *testing.T, cert, key, bundle []byte) {
		c, b, err := Parse(map[string][]byte{CertKey: cert, KeyKey: key, BundleKey: bundle}, "ferry.local")
		if err != nil {
			return
		}
		if c == nil || c.Leaf == nil || c.PrivateKey == nil || b == nil {
			t.Fatalf("accepted without a leaf, key or bundle: %+v %v", c, b)
		}
		_, _ = Verify(c, b, east.GatewayID(), time.Now)
	})
}
