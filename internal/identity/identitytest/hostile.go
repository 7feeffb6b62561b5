package identitytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"ferry.dev/ferry/internal/identity"
)

// Spec describes a certificate to mint, well-formed or not. Unlike the
// identity package, Mint checks nothing: it exists to produce the
// certificates that identity must reject.
type Spec struct {
	// Parent signs the certificate; nil means self-signed.
	Parent *identity.CA
	// URIs and DNSNames are written into the SAN extension verbatim, so
	// they may hold NUL bytes or anything else crypto/x509 would refuse.
	URIs     []string
	DNSNames []string
	// NotBefore and NotAfter default to a minute ago and an hour from now.
	NotBefore, NotAfter time.Time
	// ExtKeyUsage defaults to serverAuth and clientAuth unless NoExtKeyUsage.
	ExtKeyUsage   []x509.ExtKeyUsage
	NoExtKeyUsage bool
	// IsCA makes an intermediate, constrained to PermittedURIDomains if set.
	IsCA                bool
	PermittedURIDomains []string
	// PublicKey replaces the generated P-256 key; the result then has no
	// private key and can only be used for verification tests.
	PublicKey crypto.PublicKey
}

// Mint makes the certificate described by spec. The chain is the new
// certificate followed by the parent's, as a peer would present it.
func Mint(t testing.TB, spec Spec) *tls.Certificate {
	t.Helper()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		NotBefore:             spec.NotBefore,
		NotAfter:              spec.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           spec.ExtKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  spec.IsCA,
		PermittedURIDomains:   spec.PermittedURIDomains,
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-time.Minute)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = now.Add(time.Hour)
	}
	if tmpl.ExtKeyUsage == nil && !spec.NoExtKeyUsage {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	if spec.IsCA {
		tmpl.Subject = pkix.Name{CommonName: "identitytest CA", Organization: []string{"identitytest"}}
		tmpl.KeyUsage = x509.KeyUsageCertSign
		tmpl.PermittedDNSDomainsCritical = len(spec.PermittedURIDomains) > 0
	}
	if len(spec.URIs)+len(spec.DNSNames) > 0 {
		tmpl.ExtraExtensions = []pkix.Extension{rawSAN(t, spec.URIs, spec.DNSNames, tmpl.Subject.CommonName == "")}
	}

	var key crypto.Signer
	pub := spec.PublicKey
	if pub == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatalf("identitytest: key: %v", err)
		}
		key, pub = k, k.Public()
	}
	parent, signer := tmpl, key
	if spec.Parent != nil {
		parent, signer = spec.Parent.Cert, spec.Parent.Key
	}
	if signer == nil {
		t.Fatalf("identitytest: a self-signed certificate needs a generated key")
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatalf("identitytest: mint: %v", err)
	}
	out := &tls.Certificate{Certificate: [][]byte{der}}
	if key != nil {
		out.PrivateKey = key
	}
	if leaf, err := x509.ParseCertificate(der); err == nil {
		out.Leaf = leaf // nil when the SAN is too hostile for crypto/x509
	}
	if spec.Parent != nil {
		out.Certificate = append(out.Certificate, spec.Parent.Cert.Raw)
	}
	return out
}

// rawSAN encodes GeneralNames by hand so that values crypto/x509 would
// sanitize or refuse reach the certificate unchanged.
func rawSAN(t testing.TB, uris, dnsNames []string, critical bool) pkix.Extension {
	t.Helper()
	const tagDNS, tagURI = 2, 6
	var names []asn1.RawValue
	for _, d := range dnsNames {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagDNS, Bytes: []byte(d)})
	}
	for _, u := range uris {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagURI, Bytes: []byte(u)})
	}
	val, err := asn1.Marshal(names)
	if err != nil {
		t.Fatalf("identitytest: SAN: %v", err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Critical: critical, Value: val}
}

// ExpiredLeaf is a leaf for id that expired an hour ago.
func (c *Cluster) ExpiredLeaf(t testing.TB, id identity.ID) *tls.Certificate {
	t.Helper()
	now := time.Now()
	return Mint(t, Spec{Parent: c.Issuer, URIs: []string{id.String()}, NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)})
}

// NotYetValidLeaf is a leaf for id that becomes valid in an hour.
func (c *Cluster) NotYetValidLeaf(t testing.TB, id identity.ID) *tls.Certificate {
	t.Helper()
	now := time.Now()
	return Mint(t, Spec{Parent: c.Issuer, URIs: []string{id.String()}, NotBefore: now.Add(time.Hour), NotAfter: now.Add(2 * time.Hour)})
}

// ForgedLeaf is a leaf for id, which may belong to another cluster, signed
// by this cluster's issuer: what a compromised cluster would try.
func (c *Cluster) ForgedLeaf(t testing.TB, id identity.ID) *tls.Certificate {
	t.Helper()
	return Mint(t, Spec{Parent: c.Issuer, URIs: []string{id.String()}})
}

// LeafWithEKU is a leaf for id with exactly the given extended key usages.
func (c *Cluster) LeafWithEKU(t testing.TB, id identity.ID, eku ...x509.ExtKeyUsage) *tls.Certificate {
	t.Helper()
	return Mint(t, Spec{Parent: c.Issuer, URIs: []string{id.String()}, ExtKeyUsage: eku, NoExtKeyUsage: len(eku) == 0})
}

// SelfSignedLeaf is a self-signed certificate claiming id.
func SelfSignedLeaf(t testing.TB, id identity.ID) *tls.Certificate {
	t.Helper()
	return Mint(t, Spec{URIs: []string{id.String()}})
}

// DeepChainLeaf is a leaf for id below extra intermediates that hang off
// the cluster's issuer; the chain holds all of them, leaf first.
func (c *Cluster) DeepChainLeaf(t testing.TB, id identity.ID, extra int) *tls.Certificate {
	t.Helper()
	parent := c.Issuer
	var chain [][]byte
	for range extra {
		ic := Mint(t, Spec{Parent: parent, IsCA: true, PermittedURIDomains: []string{id.TrustDomain()}, NoExtKeyUsage: true})
		chain = append([][]byte{ic.Certificate[0]}, chain...)
		parent = &identity.CA{Cert: ic.Leaf, Key: ic.PrivateKey.(crypto.Signer)}
	}
	leaf := Mint(t, Spec{Parent: parent, URIs: []string{id.String()}})
	leaf.Certificate = append(append([][]byte{leaf.Certificate[0]}, chain...), c.Issuer.Cert.Raw)
	return leaf
}

// HugeRSALeaf is a leaf for id whose public key is an RSA modulus of bits
// bits. No private key exists: generating one would take minutes, and a
// verifier must refuse on size before it would ever need one.
func (c *Cluster) HugeRSALeaf(t testing.TB, id identity.ID, bits int) *tls.Certificate {
	t.Helper()
	n, err := rand.Prime(rand.Reader, 64) // any odd value; make it the right size below
	if err != nil {
		t.Fatalf("identitytest: %v", err)
	}
	n.SetBit(n, bits-1, 1)
	return Mint(t, Spec{Parent: c.Issuer, URIs: []string{id.String()}, PublicKey: &rsa.PublicKey{N: n, E: 65537}})
}
