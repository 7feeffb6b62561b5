package certsecret

import (
	"crypto/tls"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"ferry.dev/ferry/internal/identity"
)

// Keys of a Ferry TLS Secret: the kubernetes.io/tls pair plus the trust
// bundle under ca.crt, as cert-manager and kubectl tooling expect.
const (
	CertKey   = corev1.TLSCertKey       // leaf first, then the issuer
	KeyKey    = corev1.TLSPrivateKeyKey // PKCS #8
	BundleKey = "ca.crt"                // the mesh root(s)
	// RevokedKey holds the deny list (identity.ParseRevoked), optional.
	// It is a key of its own, not more PEM in ca.crt, because tools that
	// read ca.crt expect certificates only.
	RevokedKey = "revoked.txt"
)

// Parse reads the leaf chain, its key and the trust bundle with its deny
// list from a Secret's data. It checks form only (PEM, key matches leaf); Verify checks trust.
// Errors name the key at fault and never quote its content.
func Parse(data map[string][]byte, meshDomain string) (*tls.Certificate, *identity.Bundle, error) {
	for _, k := range []string{CertKey, KeyKey, BundleKey} {
		if len(data[k]) == 0 {
			return nil, nil, fmt.Errorf("certsecret: %s is missing or empty", k)
		}
	}
	cert, err := identity.ParseLeafPEM(data[CertKey], data[KeyKey])
	if err != nil {
		return nil, nil, fmt.Errorf("certsecret: %s/%s: %w", CertKey, KeyKey, err)
	}
	bundle, err := ParseTrust(data, meshDomain)
	if err != nil {
		return nil, nil, err
	}
	return cert, bundle, nil
}

// ParseTrust reads the trust bundle (ca.crt) and its deny list
// (revoked.txt, optional) into one Bundle. A deny list that is malformed
// or too long refuses the whole Secret rather than being skipped: skipping
// it would trust what it revokes.
func ParseTrust(data map[string][]byte, meshDomain string) (*identity.Bundle, error) {
	bundle, err := identity.ParseBundle(meshDomain, data[BundleKey])
	if err != nil {
		return nil, fmt.Errorf("certsecret: %s: %w", BundleKey, err)
	}
	revoked, err := identity.ParseRevoked(data[RevokedKey])
	if err != nil {
		return nil, fmt.Errorf("certsecret: %s: %w", RevokedKey, err)
	}
	if bundle, err = bundle.WithRevoked(revoked...); err != nil {
		return nil, fmt.Errorf("certsecret: %s: %w", RevokedKey, err)
	}
	return bundle, nil
}

// TrustData is b as Secret data: ca.crt, and revoked.txt when the deny
// list is not empty.
func TrustData(b *identity.Bundle) map[string][]byte {
	d := map[string][]byte{BundleKey: b.PEM()}
	if r := b.RevokedText(); len(r) > 0 {
		d[RevokedKey] = r
	}
	return d
}

// Verify checks that cert chains to bundle for both TLS roles (a gateway
// both accepts and dials mesh connections) and, unless want is zero, that
// it carries exactly that identity. Loading a leaf that peers would reject
// would only trade a working certificate for a broken one.
func Verify(cert *tls.Certificate, bundle *identity.Bundle, want identity.ID, now func() time.Time) (identity.ID, error) {
	var id identity.ID
	for _, role := range []identity.Role{identity.PeerServer, identity.PeerClient} {
		got, err := identity.Verifier{Bundle: bundle, Role: role, Now: now}.VerifyRaw(cert.Certificate)
		if err != nil {
			return identity.ID{}, fmt.Errorf("certsecret: leaf does not verify as a %s: %w", role, err)
		}
		id = got
	}
	if !want.IsZero() && id != want {
		return identity.ID{}, fmt.Errorf("certsecret: leaf is %s, want %s: %w", id, want, identity.ErrUnexpectedID)
	}
	return id, nil
}
