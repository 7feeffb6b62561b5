package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Limits on what a peer may present. They bound the work an unauthenticated
// peer can make us do before any signature has been checked.
const (
	// MaxChainLength is the most certificates a peer may present, and the
	// longest verified chain: leaf, issuer, root.
	MaxChainLength = 3
	// MaxRSAKeyBits is the largest RSA key accepted anywhere in a chain.
	// Ferry itself uses P-256; RSA is tolerated only for bring-your-own
	// roots, and huge keys make signature checks a denial-of-service lever.
	MaxRSAKeyBits = 4096
	// MinRSAKeyBits is the smallest RSA key accepted.
	MinRSAKeyBits = 2048
)

// Role is the TLS role of the peer being verified, which decides the
// extended key usage its leaf must carry.
type Role int

const (
	_ Role = iota
	// PeerServer: the peer is a TLS server and needs serverAuth.
	PeerServer
	// PeerClient: the peer is a TLS client and needs clientAuth.
	PeerClient
)

func (r Role) eku() (x509.ExtKeyUsage, error) {
	switch r {
	case PeerServer:
		return x509.ExtKeyUsageServerAuth, nil
	case PeerClient:
		return x509.ExtKeyUsageClientAuth, nil
	}
	return 0, fmt.Errorf("identity: verifier has no peer role (%d)", r)
}

func (r Role) String() string {
	switch r {
	case PeerServer:
		return "server"
	case PeerClient:
		return "client"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Verifier checks a peer's chain against a bundle and returns its ID.
type Verifier struct {
	Bundle *Bundle
	Role   Role
	Now    func() time.Time // nil: time.Now
}

// Verify is shorthand for Verifier{bundle, role, clock}.Verify(chain).
func Verify(bundle *Bundle, role Role, chain []*x509.Certificate, now time.Time) (ID, error) {
	return Verifier{Bundle: bundle, Role: role, Now: func() time.Time { return now }}.Verify(chain)
}

// VerifyRaw parses DER certificates (as crypto/tls hands them over) and
// verifies them. A certificate that does not parse is diagnosed as far as
// possible, so a NUL in a SAN is still reported as ErrNULInSAN.
func (v Verifier) VerifyRaw(rawCerts [][]byte) (ID, error) {
	if len(rawCerts) == 0 {
		return ID{}, ErrNoCertificate
	}
	if len(rawCerts) > MaxChainLength {
		return ID{}, fmt.Errorf("%w: peer presented %d certificates, limit is %d", ErrChainTooDeep, len(rawCerts), MaxChainLength)
	}
	chain := make([]*x509.Certificate, len(rawCerts))
	for i, der := range rawCerts {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			if hasNULInSAN(der) {
				return ID{}, fmt.Errorf("%w: certificate %d: %w", ErrNULInSAN, i, err)
			}
			return ID{}, fmt.Errorf("%w: certificate %d: %w", ErrMalformedCertificate, i, err)
		}
		chain[i] = c
	}
	return v.Verify(chain)
}

// Verify checks chain (leaf first, then intermediates as presented) and
// returns the leaf's ID. The checks that crypto/x509 would also make are
// done first, by hand, so that each defect gets its own error instead of
// x509's catch-all; x509.Verify then runs as the authority on the chain.
func (v Verifier) Verify(chain []*x509.Certificate) (ID, error) {
	if v.Bundle == nil {
		return ID{}, ErrNoBundle
	}
	eku, err := v.Role.eku()
	if err != nil {
		return ID{}, err
	}
	if len(chain) == 0 || chain[0] == nil {
		return ID{}, ErrNoCertificate
	}
	if len(chain) > MaxChainLength {
		return ID{}, fmt.Errorf("%w: peer presented %d certificates, limit is %d", ErrChainTooDeep, len(chain), MaxChainLength)
	}
	for i, c := range chain {
		if c == nil {
			return ID{}, fmt.Errorf("%w: certificate %d is nil", ErrMalformedCertificate, i)
		}
		if err := checkPublicKey(c.PublicKey); err != nil {
			return ID{}, fmt.Errorf("certificate %d: %w", i, err)
		}
	}
	leaf := chain[0]
	if isSelfSigned(leaf) {
		return ID{}, ErrSelfSigned
	}
	if leaf.IsCA {
		return ID{}, ErrLeafIsCA
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	for i, c := range chain {
		if now.Before(c.NotBefore) {
			return ID{}, fmt.Errorf("%w: certificate %d valid from %s", ErrNotYetValid, i, c.NotBefore.UTC().Format(time.RFC3339))
		}
		if now.After(c.NotAfter) {
			return ID{}, fmt.Errorf("%w: certificate %d expired %s", ErrExpired, i, c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	id, err := IDFromCertificate(leaf, v.Bundle.meshDomain)
	if err != nil {
		return ID{}, err
	}
	if !slices.Contains(leaf.ExtKeyUsage, eku) {
		return ID{}, fmt.Errorf("%w: %s needs %s", ErrMissingEKU, id, ekuName(eku))
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         v.Bundle.pool,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{eku},
	})
	if err != nil {
		return ID{}, classifyX509(id, err)
	}
	// x509 already enforced the name constraints. Requiring the issuer to
	// name exactly this trust domain as well makes the guarantee hold even
	// for an issuer that was minted without constraints.
	var last error
	for _, c := range chains {
		if r := v.Bundle.firstRevoked(c); r != nil {
			last = fmt.Errorf("%w: %s chains through %q (key %s), which is on the deny list",
				ErrRevoked, id, r.Subject.CommonName, RevocationOf(r, "").Fingerprint())
			continue
		}
		if len(c) > MaxChainLength {
			last = fmt.Errorf("%w: verified chain has %d certificates, limit is %d", ErrChainTooDeep, len(c), MaxChainLength)
			continue
		}
		if len(c) < 2 || len(c[1].PermittedURIDomains) != 1 || c[1].PermittedURIDomains[0] != id.TrustDomain() {
			last = fmt.Errorf("%w: %s is signed by %q, which is not constrained to %s",
				ErrTrustDomainNotPermitted, id, c[min(1, len(c)-1)].Subject.CommonName, id.TrustDomain())
			continue
		}
		return id, nil
	}
	return ID{}, last
}

// IDFromCertificate applies Ferry's SAN rules to a leaf (exactly one URI
// SAN, no other SAN types, no NUL bytes) and parses the SPIFFE ID. It does
// not verify the chain; use a Verifier for that. An empty meshDomain infers
// the mesh from the trust domain, which is only for describing certificates
// or re-reading one that has already been verified.
func IDFromCertificate(leaf *x509.Certificate, meshDomain string) (ID, error) {
	if leaf == nil {
		return ID{}, ErrNoCertificate
	}
	for _, s := range slices.Concat(leaf.DNSNames, leaf.EmailAddresses) {
		if strings.IndexByte(s, 0) >= 0 {
			return ID{}, fmt.Errorf("%w: %q", ErrNULInSAN, s)
		}
	}
	for _, u := range leaf.URIs {
		// url.Parse decodes %00 into the decoded fields, so look there as
		// well as at the re-encoded form.
		for _, s := range []string{u.Opaque, u.Host, u.Path, u.RawPath, u.RawQuery, u.Fragment, u.User.String()} {
			if strings.IndexByte(s, 0) >= 0 || strings.Contains(strings.ToLower(s), "%00") {
				return ID{}, fmt.Errorf("%w: %q", ErrNULInSAN, u.String())
			}
		}
	}
	switch {
	case len(leaf.URIs) == 0:
		return ID{}, ErrNoURISAN
	case len(leaf.URIs) > 1:
		return ID{}, fmt.Errorf("%w: %d URI SANs", ErrMultipleURISANs, len(leaf.URIs))
	case len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) > 0:
		return ID{}, fmt.Errorf("%w: dns=%q ip=%v email=%q", ErrUnexpectedSAN, leaf.DNSNames, leaf.IPAddresses, leaf.EmailAddresses)
	}
	u := leaf.URIs[0]
	if u.Scheme != spiffeScheme {
		return ID{}, fmt.Errorf("%w: %q", ErrNotSPIFFE, u.String())
	}
	if meshDomain == "" {
		return ParseIDInferMesh(u.String())
	}
	return ParseID(u.String(), meshDomain)
}

func classifyX509(id ID, err error) error {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return fmt.Errorf("%w: %s: %w", ErrUnknownAuthority, id, err)
	}
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) {
		switch ci.Reason {
		case x509.Expired:
			return fmt.Errorf("%w: %w", ErrExpired, err)
		case x509.CANotAuthorizedForThisName, x509.UnconstrainedName, x509.NameConstraintsWithoutSANs:
			return fmt.Errorf("%w: %s: %w", ErrTrustDomainNotPermitted, id, err)
		case x509.TooManyIntermediates:
			return fmt.Errorf("%w: %w", ErrChainTooDeep, err)
		case x509.IncompatibleUsage, x509.CANotAuthorizedForExtKeyUsage:
			return fmt.Errorf("%w: %w", ErrMissingEKU, err)
		}
	}
	return fmt.Errorf("%w: %s: %w", ErrInvalidChain, id, err)
}

// checkPublicKey admits the key types a mesh peer may reasonably use.
func checkPublicKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384():
			return nil
		}
		return fmt.Errorf("%w: ECDSA curve %s", ErrUnsupportedKey, k.Curve.Params().Name)
	case ed25519.PublicKey:
		return nil
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		if bits > MaxRSAKeyBits {
			return fmt.Errorf("%w: %d bits, limit is %d", ErrKeyTooLarge, bits, MaxRSAKeyBits)
		}
		if bits < MinRSAKeyBits {
			return fmt.Errorf("%w: RSA %d bits, minimum is %d", ErrWeakKey, bits, MinRSAKeyBits)
		}
		return nil
	}
	return fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
}

// isSelfSigned checks the signature, not just issuer == subject, because a
// leaf with an empty subject signed by an issuer with an empty subject is not
// self-signed.
func isSelfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false
	}
	return c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

func ekuName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "serverAuth"
	case x509.ExtKeyUsageClientAuth:
		return "clientAuth"
	}
	return fmt.Sprintf("EKU(%d)", u)
}
