package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
)

// Bundle is the set of mesh roots that a peer's chain must end in, and the
// deny list of keys that no chain may contain (WithRevoked). It holds
// several roots during a root rotation. A Bundle is immutable; to change
// trust, build a new one and swap it into a Source.
type Bundle struct {
	meshDomain string
	roots      []*x509.Certificate
	pool       *x509.CertPool
	revoked    []Revocation
	deny       map[[sha256.Size]byte]bool
}

// NewBundle builds a bundle for meshDomain. Every root must be a CA, and a
// root that carries a URI name constraint must cover meshDomain: mixing in
// another mesh's root is a misconfiguration worth failing loudly on.
func NewBundle(meshDomain string, roots ...*x509.Certificate) (*Bundle, error) {
	if err := ValidateMeshDomain(meshDomain); err != nil {
		return nil, err
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("%w: no roots", ErrNoBundle)
	}
	b := &Bundle{meshDomain: meshDomain, pool: x509.NewCertPool()}
	for _, r := range roots {
		if r == nil || !r.BasicConstraintsValid || !r.IsCA {
			return nil, fmt.Errorf("%w: bundle entry %q", ErrNotCA, subjectOf(r))
		}
		if err := checkPublicKey(r.PublicKey); err != nil {
			return nil, fmt.Errorf("bundle entry %q: %w", subjectOf(r), err)
		}
		if len(r.PermittedURIDomains) > 0 && !coversMesh(r.PermittedURIDomains, meshDomain) {
			return nil, fmt.Errorf("%w: %q permits %v, mesh is %q", ErrMeshMismatch, subjectOf(r),
				r.PermittedURIDomains, meshDomain)
		}
		if slices.ContainsFunc(b.roots, r.Equal) {
			continue
		}
		b.roots = append(b.roots, r)
		b.pool.AddCert(r)
	}
	return b, nil
}

// ParseBundle reads a PEM trust bundle (one or more CERTIFICATE blocks).
func ParseBundle(meshDomain string, pemData []byte) (*Bundle, error) {
	roots, err := ParseCertificatesPEM(pemData)
	if err != nil {
		return nil, fmt.Errorf("trust bundle: %w", err)
	}
	return NewBundle(meshDomain, roots...)
}

func coversMesh(permitted []string, mesh string) bool {
	for _, d := range permitted {
		// Go matches a leading-dot URI constraint against any host below it.
		if strings.HasPrefix(d, ".") && strings.HasSuffix("."+mesh, d) {
			return true
		}
	}
	return false
}

// MeshDomain is the mesh whose identities this bundle verifies.
func (b *Bundle) MeshDomain() string { return b.meshDomain }

// Roots returns a copy of the roots, in the order given.
func (b *Bundle) Roots() []*x509.Certificate { return slices.Clone(b.roots) }

// Contains reports whether cert is one of the roots.
func (b *Bundle) Contains(cert *x509.Certificate) bool {
	return slices.ContainsFunc(b.roots, cert.Equal)
}

// PEM encodes the roots.
func (b *Bundle) PEM() []byte { return EncodeCertificatesPEM(b.roots...) }

func subjectOf(c *x509.Certificate) string {
	if c == nil {
		return "<nil>"
	}
	return c.Subject.String()
}
