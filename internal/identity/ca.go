package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
)

// MaxBackdate is how far NotBefore is set before "now", to tolerate clock
// skew between clusters. It is capped at a tenth of the lifetime so that
// short test lifetimes are not dominated by the backdate.
const MaxBackdate = 5 * time.Minute

const (
	organization = "ferry.dev"
	serialBits   = 128
)

// CA is a signing certificate and its key: the mesh root or a cluster's
// issuer. Now is the clock used for validity periods (nil: time.Now).
//
// CA implements fmt.Stringer, fmt.GoStringer and slog.LogValuer so that
// printing or logging a CA never prints its key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	Now  func() time.Time
}

// Option configures NewRoot.
type Option func(*CA)

// WithClock sets the clock used for validity periods.
func WithClock(now func() time.Time) Option { return func(ca *CA) { ca.Now = now } }

func (ca *CA) now() time.Time {
	if ca.Now != nil {
		return ca.Now()
	}
	return time.Now()
}

// String describes the CA without its key.
func (ca *CA) String() string {
	if ca == nil || ca.Cert == nil {
		return "CA(<nil>)"
	}
	return fmt.Sprintf("CA(%s, serial %x, until %s)", ca.Cert.Subject.CommonName, ca.Cert.SerialNumber,
		ca.Cert.NotAfter.UTC().Format(time.RFC3339))
}

// GoString keeps %#v from dumping the private key.
func (ca *CA) GoString() string { return ca.String() }

// LogValue keeps slog from dumping the private key.
func (ca *CA) LogValue() slog.Value { return slog.StringValue(ca.String()) }

// NewRoot makes a mesh trust anchor. It is itself name-constrained to URI
// SANs under the mesh domain: defence in depth, and it lets tools recover the
// mesh domain from the root alone.
func NewRoot(meshDomain string, validity time.Duration, opts ...Option) (*CA, error) {
	if err := ValidateMeshDomain(meshDomain); err != nil {
		return nil, err
	}
	ca := &CA{}
	for _, o := range opts {
		o(ca)
	}
	if validity == 0 {
		validity = DefaultRootValidity
	}
	if validity < 0 {
		return nil, fmt.Errorf("identity: root validity %s is negative", validity)
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := ca.now()
	tmpl := caTemplate(serial, "ferry root "+meshDomain, "."+meshDomain, now, validity)
	tmpl.MaxPathLen = 1 // root -> issuer -> leaf, nothing deeper
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("identity: create root: %w", err)
	}
	ca.Cert, err = x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("identity: parse new root: %w", err)
	}
	ca.Key = key
	return ca, nil
}

// NewIssuer makes cluster's intermediate CA, signed by root, whose name
// constraints permit only URI SANs in <cluster>.<mesh-domain>.
func (root *CA) NewIssuer(cluster string, validity time.Duration) (*CA, error) {
	if err := ValidateDNSLabel(cluster); err != nil {
		return nil, fmt.Errorf("identity: cluster name %q: %w", cluster, err)
	}
	mesh, err := root.MeshDomain()
	if err != nil {
		return nil, err
	}
	if validity == 0 {
		validity = DefaultIssuerValidity
	}
	if validity < 0 {
		return nil, fmt.Errorf("identity: issuer validity %s is negative", validity)
	}
	now := root.now()
	if end := now.Add(validity); end.After(root.Cert.NotAfter) {
		return nil, fmt.Errorf("%w: issuer would end %s but the root ends %s; shorten the validity or rotate the root",
			ErrCAValidity, end.UTC().Format(time.RFC3339), root.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	td := cluster + "." + mesh
	tmpl := caTemplate(serial, "ferry issuer "+td, td, now, validity)
	tmpl.MaxPathLen, tmpl.MaxPathLenZero = 0, true // issuers sign only leaves
	// RFC 5280 reads a URI constraint without a leading dot as one exact
	// host, but Go (like DNS constraints) also lets it match sub-domains;
	// excluding ".<td>" makes both readings agree on "this host only".
	tmpl.ExcludedURIDomains = []string{"." + td}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.Cert, key.Public(), root.Key)
	if err != nil {
		return nil, fmt.Errorf("identity: create issuer for %s: %w", cluster, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("identity: parse new issuer: %w", err)
	}
	return &CA{Cert: cert, Key: key, Now: root.Now}, nil
}

// caTemplate builds a CA template whose name constraints permit exactly one
// URI domain. Go applies permitted subtrees per name type, so a CA that
// permits only URIs would still allow any DNS name, IP or email; those are
// excluded explicitly (an empty domain matches every name of its type).
func caTemplate(serial *big.Int, cn, uriDomain string, now time.Time, validity time.Duration) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:                serial,
		Subject:                     pkix.Name{CommonName: cn, Organization: []string{organization}},
		NotBefore:                   now.Add(-backdate(validity)),
		NotAfter:                    now.Add(validity),
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid:       true,
		IsCA:                        true,
		PermittedDNSDomainsCritical: true,
		PermittedURIDomains:         []string{uriDomain},
		ExcludedDNSDomains:          []string{""},
		ExcludedEmailAddresses:      []string{""},
		ExcludedIPRanges: []*net.IPNet{
			{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)},
		},
	}
}

// MeshDomain recovers the mesh domain from the CA's URI name constraint:
// ".<mesh>" on a root, "<cluster>.<mesh>" on an issuer.
func (ca *CA) MeshDomain() (string, error) {
	if ca == nil || ca.Cert == nil {
		return "", ErrNotCA
	}
	d, err := permittedURIDomain(ca.Cert)
	if err != nil {
		return "", err
	}
	if mesh, ok := strings.CutPrefix(d, "."); ok {
		return mesh, nil
	}
	_, mesh, _ := strings.Cut(d, ".")
	return mesh, nil
}

// TrustDomain returns the single trust domain an issuer may sign, or
// ErrNotAnIssuer for a root or a foreign CA.
func (ca *CA) TrustDomain() (string, error) {
	if ca == nil || ca.Cert == nil {
		return "", ErrNotCA
	}
	d, err := permittedURIDomain(ca.Cert)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(d, ".") {
		return "", fmt.Errorf("%w: %q permits a whole mesh (a root?)", ErrNotAnIssuer, ca.Cert.Subject.CommonName)
	}
	return d, nil
}

func permittedURIDomain(c *x509.Certificate) (string, error) {
	if !c.IsCA {
		return "", fmt.Errorf("%w: %q", ErrNotCA, c.Subject.CommonName)
	}
	if len(c.PermittedURIDomains) != 1 {
		return "", fmt.Errorf("%w: %q permits %d URI domains, want exactly 1", ErrNotAnIssuer,
			c.Subject.CommonName, len(c.PermittedURIDomains))
	}
	d := c.PermittedURIDomains[0]
	if err := validateSubdomain(strings.TrimPrefix(d, "."), maxTrustDomainLength); err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrNotAnIssuer, d, err)
	}
	return d, nil
}

// IssueLeaf makes a new P-256 key and a leaf for id. ttl 0 means
// DefaultLeafTTL; the leaf never outlives the issuer. The returned chain is
// leaf then issuer: peers hold the root in their bundle.
func (ca *CA) IssueLeaf(id ID, ttl time.Duration) (*tls.Certificate, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	leaf, err := ca.SignLeaf(id, key.Public(), ttl)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{
		Certificate: [][]byte{leaf.Raw, ca.Cert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

// SignLeaf signs a leaf for id over a public key that the caller holds the
// private half of (for flows where the key never leaves the workload).
func (ca *CA) SignLeaf(id ID, pub crypto.PublicKey, ttl time.Duration) (*x509.Certificate, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	td, err := ca.TrustDomain()
	if err != nil {
		return nil, err
	}
	if td != id.TrustDomain() {
		return nil, fmt.Errorf("%w: issuer for %s cannot sign %s", ErrTrustDomainNotPermitted, td, id)
	}
	if ttl == 0 {
		ttl = DefaultLeafTTL
	}
	if ttl < 0 {
		return nil, fmt.Errorf("identity: leaf ttl %s is negative", ttl)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(id.String())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidID, err)
	}
	now := ca.now()
	notAfter := now.Add(ttl)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             now.Add(-backdate(ttl)),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("identity: sign leaf for %s: %w", id, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("identity: parse new leaf: %w", err)
	}
	return leaf, nil
}

func backdate(lifetime time.Duration) time.Duration { return min(MaxBackdate, lifetime/10) }

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate key: %w", err)
	}
	return key, nil
}

// randomSerial returns a non-zero serial with 128 random bits, so serials
// are unique across issuers without coordination.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), serialBits)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("identity: serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// keyMatches reports whether key is the private half of pub.
func keyMatches(key crypto.Signer, pub crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	k, ok := key.Public().(equaler)
	return ok && k.Equal(pub)
}
