package identity

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
)

const (
	pemCertificate  = "CERTIFICATE"
	pemPrivateKey   = "PRIVATE KEY"
	pemECPrivateKey = "EC PRIVATE KEY"
)

// EncodeCertificatesPEM encodes certificates as consecutive CERTIFICATE blocks.
func EncodeCertificatesPEM(certs ...*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&buf, &pem.Block{Type: pemCertificate, Bytes: c.Raw})
	}
	return buf.Bytes()
}

// ParseCertificatesPEM reads one or more CERTIFICATE blocks. Any other block
// is an error rather than skipped, so that a key pasted into a certificate
// or bundle file is noticed instead of being shipped around. Errors never
// quote block contents.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, fmt.Errorf("%w: %w", ErrInvalidPEM, ErrKeyInCertPEM)
		}
		if block.Type != pemCertificate {
			return nil, fmt.Errorf("%w: found a %q block where only certificates belong", ErrInvalidPEM, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %w", ErrMalformedCertificate, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no CERTIFICATE block", ErrInvalidPEM)
	}
	return certs, nil
}

// EncodePrivateKeyPEM encodes key as PKCS #8.
func EncodePrivateKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("identity: encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// ParsePrivateKeyPEM reads a PKCS #8 or SEC 1 private key. Errors never
// quote the key material.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block where a private key was expected", ErrInvalidPEM)
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case pemPrivateKey:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case pemECPrivateKey:
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: found a %q block where a private key was expected", ErrInvalidPEM, block.Type)
	}
	if err != nil {
		// x509's messages describe structure, not content, so they are safe.
		return nil, fmt.Errorf("%w: private key: %w", ErrInvalidPEM, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: private key of type %T cannot sign", ErrUnsupportedKey, key)
	}
	return signer, nil
}

// CertPEM encodes the CA certificate.
func (ca *CA) CertPEM() []byte { return EncodeCertificatesPEM(ca.Cert) }

// KeyPEM encodes the CA key. Write it with mode 0600.
func (ca *CA) KeyPEM() ([]byte, error) { return EncodePrivateKeyPEM(ca.Key) }

// LoadCA reads a CA certificate and its key, checking that they belong
// together and that the certificate is a CA.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := ParseCertificatesPEM(certPEM)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("%w: CA file holds %d certificates, want 1", ErrInvalidPEM, len(certs))
	}
	cert := certs[0]
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("%w: %q", ErrNotCA, cert.Subject.CommonName)
	}
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	if !keyMatches(key, cert.PublicKey) {
		return nil, fmt.Errorf("%w: %q", ErrKeyMismatch, cert.Subject.CommonName)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LoadIssuer reads a cluster's issuer certificate, key and trust bundle, as
// written by `ferry identity issuer`. It checks that the issuer is name
// constrained to one trust domain and chains to a root of the bundle, whose
// mesh domain is taken from the issuer's constraint.
func LoadIssuer(certPEM, keyPEM, bundlePEM []byte) (*CA, *Bundle, error) {
	ca, err := LoadCA(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: %w", err)
	}
	if _, err := ca.TrustDomain(); err != nil {
		return nil, nil, fmt.Errorf("issuer: %w", err)
	}
	mesh, err := ca.MeshDomain()
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: %w", err)
	}
	bundle, err := ParseBundle(mesh, bundlePEM)
	if err != nil {
		return nil, nil, err
	}
	if _, err := ca.Cert.Verify(x509.VerifyOptions{
		Roots:     bundle.pool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, nil, fmt.Errorf("%w: issuer does not chain to the bundle: %w", ErrUnknownAuthority, err)
	}
	return ca, bundle, nil
}

// EncodeLeafPEM encodes a leaf chain and its key, e.g. for the tls.crt and
// tls.key of a Secret.
func EncodeLeafPEM(c *tls.Certificate) (certPEM, keyPEM []byte, err error) {
	if c == nil || len(c.Certificate) == 0 {
		return nil, nil, ErrSourceEmpty
	}
	signer, ok := c.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%w: private key of type %T", ErrUnsupportedKey, c.PrivateKey)
	}
	var buf bytes.Buffer
	for _, der := range c.Certificate {
		_ = pem.Encode(&buf, &pem.Block{Type: pemCertificate, Bytes: der})
	}
	keyPEM, err = EncodePrivateKeyPEM(signer)
	if err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), keyPEM, nil
}

// ParseLeafPEM reads a leaf chain and key written by EncodeLeafPEM.
func ParseLeafPEM(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	certs, err := ParseCertificatesPEM(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	if !keyMatches(key, certs[0].PublicKey) {
		return nil, ErrKeyMismatch
	}
	c := &tls.Certificate{PrivateKey: key, Leaf: certs[0]}
	for _, cert := range certs {
		c.Certificate = append(c.Certificate, cert.Raw)
	}
	return c, nil
}
