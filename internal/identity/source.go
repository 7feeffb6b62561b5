package identity

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"time"
)

// Source holds the local leaf and the trust bundle behind atomic pointers.
// TLS configs built from it read both on every handshake, so a rotation
// (SetCertificate, SetBundle) applies to the next handshake without a restart
// and without touching connections that are already up.
//
// The zero Source is usable once a certificate and bundle are set. Now, if
// set, must be set before the Source is shared.
type Source struct {
	Now func() time.Time

	cert   atomic.Pointer[tls.Certificate]
	bundle atomic.Pointer[Bundle]
}

// NewSource returns a Source holding cert and bundle.
func NewSource(cert *tls.Certificate, bundle *Bundle) (*Source, error) {
	s := &Source{}
	if err := s.SetCertificate(cert); err != nil {
		return nil, err
	}
	if err := s.SetBundle(bundle); err != nil {
		return nil, err
	}
	return s, nil
}

// SetCertificate swaps in a new leaf chain. It refuses a chain whose key does
// not match, so a half-written Secret cannot take the gateway down.
func (s *Source) SetCertificate(cert *tls.Certificate) error {
	if cert == nil || len(cert.Certificate) == 0 {
		return ErrSourceEmpty
	}
	c := *cert // never mutate the caller's value
	if c.Leaf == nil {
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMalformedCertificate, err)
		}
		c.Leaf = leaf
	}
	signer, ok := c.PrivateKey.(crypto.Signer)
	if !ok || !keyMatches(signer, c.Leaf.PublicKey) {
		return ErrKeyMismatch
	}
	s.cert.Store(&c)
	return nil
}

// SetBundle swaps in a new trust bundle.
func (s *Source) SetBundle(b *Bundle) error {
	if b == nil {
		return ErrNoBundle
	}
	s.bundle.Store(b)
	return nil
}

// Certificate returns the current leaf chain, or nil.
func (s *Source) Certificate() *tls.Certificate { return s.cert.Load() }

// Bundle returns the current trust bundle, or nil.
func (s *Source) Bundle() *Bundle { return s.bundle.Load() }

// ID returns the identity in the current leaf.
func (s *Source) ID() (ID, error) {
	c := s.cert.Load()
	if c == nil {
		return ID{}, ErrSourceEmpty
	}
	return IDFromCertificate(c.Leaf, "")
}

// GetCertificate is for tls.Config.GetCertificate.
func (s *Source) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.cert.Load(); c != nil {
		return c, nil
	}
	return nil, ErrSourceEmpty
}

// GetClientCertificate is for tls.Config.GetClientCertificate.
func (s *Source) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if c := s.cert.Load(); c != nil {
		return c, nil
	}
	return nil, ErrSourceEmpty
}

// Verifier returns a verifier for peers in role that uses the bundle
// current at the time of the call.
func (s *Source) Verifier(role Role) Verifier {
	return Verifier{Bundle: s.bundle.Load(), Role: role, Now: s.Now}
}

// ServerTLSConfig is for a listener that only mesh peers may use. Every
// client must present a certificate that verifies against the current
// bundle; allow then authorizes the verified ID (nil allows any mesh peer).
// The caller sets NextProtos.
//
// Verification happens in VerifyConnection rather than through crypto/tls's
// own chain check, because that one knows hostnames, not SPIFFE IDs.
// Session tickets are off so that every connection gets a full handshake
// against the current leaf and bundle; mesh connections are long-lived and
// pooled, so resumption would save little.
func (s *Source) ServerTLSConfig(allow func(ID) error) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		GetCertificate:         s.GetCertificate,
		ClientAuth:             tls.RequireAnyClientCert,
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, err := s.Verifier(PeerClient).Verify(cs.PeerCertificates)
			if err != nil {
				return err
			}
			if allow != nil {
				if err := allow(id); err != nil {
					return fmt.Errorf("%w: %s: %w", ErrNotAuthorized, id, err)
				}
			}
			return nil
		},
	}
}

// ClientTLSConfig is for dialing a mesh peer that must present exactly
// expect. The caller sets NextProtos (and ServerName if it wants SNI).
//
// InsecureSkipVerify only turns off crypto/tls's hostname-based check;
// VerifyConnection performs the full chain and identity verification.
func (s *Source) ClientTLSConfig(expect ID) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetClientCertificate: s.GetClientCertificate,
		InsecureSkipVerify:   true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, err := s.Verifier(PeerServer).Verify(cs.PeerCertificates)
			if err != nil {
				return err
			}
			if id != expect {
				return fmt.Errorf("%w: got %s, want %s", ErrUnexpectedID, id, expect)
			}
			return nil
		},
	}
}

// PeerID returns the peer's ID from a completed handshake on a connection
// made with ServerTLSConfig or ClientTLSConfig. Those configs abort any
// handshake whose peer did not verify, so reading the leaf here is safe;
// on a connection made with any other config it is not.
func PeerID(cs tls.ConnectionState) (ID, error) {
	if !cs.HandshakeComplete {
		return ID{}, fmt.Errorf("identity: handshake not complete")
	}
	if len(cs.PeerCertificates) == 0 {
		return ID{}, ErrNoCertificate
	}
	return IDFromCertificate(cs.PeerCertificates[0], "")
}
