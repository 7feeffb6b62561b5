package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strings"
	"time"
)

// Description is what `ferry identity inspect` shows about a certificate.
// It never includes key material: only the public key's algorithm.
type Description struct {
	Kind            string           `json:"kind"` // root, issuer, ca or leaf
	Subject         string           `json:"subject"`
	Issuer          string           `json:"issuer"`
	Serial          string           `json:"serial"`
	SPIFFEID        string           `json:"spiffeID,omitempty"`
	TrustDomain     string           `json:"trustDomain,omitempty"`
	MeshDomain      string           `json:"meshDomain,omitempty"`
	Cluster         string           `json:"cluster,omitempty"`
	IDError         string           `json:"idError,omitempty"`
	URIs            []string         `json:"uris,omitempty"`
	DNSNames        []string         `json:"dnsNames,omitempty"`
	IPAddresses     []string         `json:"ipAddresses,omitempty"`
	PublicKey       string           `json:"publicKey"`
	SPKISHA256      string           `json:"spkiSHA256"` // what a deny list names (Revocation)
	KeyUsage        []string         `json:"keyUsage,omitempty"`
	ExtKeyUsage     []string         `json:"extKeyUsage,omitempty"`
	MaxPathLen      *int             `json:"maxPathLen,omitempty"`
	NameConstraints *NameConstraints `json:"nameConstraints,omitempty"`
	NotBefore       time.Time        `json:"notBefore"`
	NotAfter        time.Time        `json:"notAfter"`
	TimeLeft        time.Duration    `json:"-"`
	TimeLeftSeconds int64            `json:"timeLeftSeconds"`
	Expired         bool             `json:"expired"`
	RenewAt         *time.Time       `json:"renewAt,omitempty"`
}

// NameConstraints lists a CA's name constraints.
type NameConstraints struct {
	Critical            bool     `json:"critical"`
	PermittedURIDomains []string `json:"permittedURIDomains,omitempty"`
	ExcludedURIDomains  []string `json:"excludedURIDomains,omitempty"`
	PermittedDNSDomains []string `json:"permittedDNSDomains,omitempty"`
	ExcludedDNSDomains  []string `json:"excludedDNSDomains,omitempty"`
	ExcludedEmail       []string `json:"excludedEmailAddresses,omitempty"`
	ExcludedIPRanges    []string `json:"excludedIPRanges,omitempty"`
}

// ReadCertificates reads certificates from PEM or, failing any PEM
// armour, from a single DER certificate.
func ReadCertificates(data []byte) ([]*x509.Certificate, error) {
	if bytes.Contains(data, []byte("-----BEGIN")) {
		return ParseCertificatesPEM(data)
	}
	c, err := x509.ParseCertificate(data)
	if err != nil {
		return nil, fmt.Errorf("%w: neither PEM nor DER: %w", ErrMalformedCertificate, err)
	}
	return []*x509.Certificate{c}, nil
}

// Describe summarizes c as of now. It describes, it does not verify.
func Describe(c *x509.Certificate, now time.Time) Description {
	d := Description{
		Subject:    c.Subject.String(),
		Issuer:     c.Issuer.String(),
		Serial:     fmt.Sprintf("%x", c.SerialNumber),
		PublicKey:  describeKey(c.PublicKey),
		SPKISHA256: RevocationOf(c, "").Fingerprint(),
		KeyUsage:   keyUsageNames(c.KeyUsage),
		NotBefore:  c.NotBefore.UTC(),
		NotAfter:   c.NotAfter.UTC(),
		TimeLeft:   c.NotAfter.Sub(now).Truncate(time.Second),
		Expired:    now.After(c.NotAfter),
	}
	d.TimeLeftSeconds = int64(d.TimeLeft / time.Second)
	for _, u := range c.ExtKeyUsage {
		d.ExtKeyUsage = append(d.ExtKeyUsage, ekuName(u))
	}
	for _, u := range c.URIs {
		d.URIs = append(d.URIs, u.String())
	}
	d.DNSNames = c.DNSNames
	for _, ip := range c.IPAddresses {
		d.IPAddresses = append(d.IPAddresses, ip.String())
	}
	if c.IsCA {
		d.Kind = "ca"
		if isSelfSigned(c) {
			d.Kind = "root"
		}
		if c.BasicConstraintsValid && (c.MaxPathLen > 0 || c.MaxPathLenZero) {
			d.MaxPathLen = &c.MaxPathLen
		}
		d.NameConstraints = describeConstraints(c)
		ca := &CA{Cert: c}
		if td, err := ca.TrustDomain(); err == nil {
			d.Kind, d.TrustDomain = "issuer", td
			d.Cluster, _, _ = strings.Cut(td, ".")
		}
		if mesh, err := ca.MeshDomain(); err == nil {
			d.MeshDomain = mesh
		}
		return d
	}
	d.Kind = "leaf"
	renew := RenewalTime(c).UTC()
	d.RenewAt = &renew
	id, err := IDFromCertificate(c, "")
	if err != nil {
		d.IDError = err.Error()
		return d
	}
	d.SPIFFEID, d.TrustDomain, d.MeshDomain, d.Cluster = id.String(), id.TrustDomain(), id.MeshDomain, id.Cluster
	return d
}

func describeConstraints(c *x509.Certificate) *NameConstraints {
	n := &NameConstraints{
		Critical:            c.PermittedDNSDomainsCritical,
		PermittedURIDomains: c.PermittedURIDomains,
		ExcludedURIDomains:  c.ExcludedURIDomains,
		PermittedDNSDomains: c.PermittedDNSDomains,
		ExcludedDNSDomains:  c.ExcludedDNSDomains,
		ExcludedEmail:       c.ExcludedEmailAddresses,
	}
	for _, r := range c.ExcludedIPRanges {
		n.ExcludedIPRanges = append(n.ExcludedIPRanges, r.String())
	}
	if len(n.PermittedURIDomains)+len(n.ExcludedURIDomains)+len(n.PermittedDNSDomains)+len(n.ExcludedDNSDomains)+
		len(n.ExcludedEmail)+len(n.ExcludedIPRanges)+len(c.PermittedIPRanges)+len(c.PermittedEmailAddresses) == 0 {
		return nil
	}
	return n
}

func describeKey(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

func keyUsageNames(u x509.KeyUsage) []string {
	names := []struct {
		bit  x509.KeyUsage
		name string
	}{
		{x509.KeyUsageDigitalSignature, "digitalSignature"},
		{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
		{x509.KeyUsageKeyAgreement, "keyAgreement"},
		{x509.KeyUsageCertSign, "certSign"},
		{x509.KeyUsageCRLSign, "crlSign"},
	}
	var out []string
	for _, n := range names {
		if u&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return out
}
