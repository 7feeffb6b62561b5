package identity

import (
	"fmt"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Lifetimes. Leaves are short so that a stolen key is worth little and
// revocation is unnecessary; CAs are long because rotating them is manual.
const (
	DefaultLeafTTL         = 24 * time.Hour
	DefaultIssuerValidity  = 365 * 24 * time.Hour
	DefaultRootValidity    = 10 * 365 * 24 * time.Hour
	maxDNSLabelLength      = 63
	maxDNSSubdomainLength  = 253
	maxTrustDomainLength   = 255
	spiffeScheme           = "spiffe"
	pathNamespaceSegment   = "ns"
	pathServiceAcctSegment = "sa"
)

// MaxIDLength bounds the SPIFFE IDs we are willing to parse (the SPIFFE spec's
// URI limit), so hostile input cannot make parsing expensive.
const MaxIDLength = 2048

// ID is a Ferry workload identity:
// spiffe://<Cluster>.<MeshDomain>/ns/<Namespace>/sa/<ServiceAccount>.
// The cluster is a single DNS label, which is what makes the trust domain
// split unambiguously into cluster and mesh domain.
type ID struct {
	MeshDomain     string
	Cluster        string
	Namespace      string
	ServiceAccount string
}

// TrustDomain returns "<cluster>.<mesh-domain>".
func (id ID) TrustDomain() string { return id.Cluster + "." + id.MeshDomain }

// String returns the SPIFFE ID URI. It does not validate; use Validate.
func (id ID) String() string {
	return spiffeScheme + "://" + id.TrustDomain() + "/" + pathNamespaceSegment + "/" + id.Namespace +
		"/" + pathServiceAcctSegment + "/" + id.ServiceAccount
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// Validate checks that id round-trips through ParseID, so an ID that passes
// can be put in a certificate and will be read back identically.
func (id ID) Validate() error {
	got, err := ParseID(id.String(), id.MeshDomain)
	if err != nil {
		return err
	}
	if got != id {
		return fmt.Errorf("%w: %q does not round-trip (got %+v)", ErrInvalidID, id.String(), got)
	}
	return nil
}

// ParseID parses a Ferry SPIFFE ID whose trust domain must be
// <cluster>.<meshDomain>. The URI syntax is checked by go-spiffe; this
// function only adds Ferry's structure on top of an already valid ID.
func ParseID(uri, meshDomain string) (ID, error) {
	if err := ValidateMeshDomain(meshDomain); err != nil {
		return ID{}, err
	}
	return parseID(uri, meshDomain)
}

// ParseIDInferMesh parses a Ferry SPIFFE ID without knowing the mesh domain:
// the first label of the trust domain is the cluster, the rest is the mesh.
// Use it only to describe certificates (inspect) or on an ID that has already
// been verified against a bundle, never to decide trust.
func ParseIDInferMesh(uri string) (ID, error) { return parseID(uri, "") }

func parseID(uri, meshDomain string) (ID, error) {
	if len(uri) > MaxIDLength {
		return ID{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidID, MaxIDLength)
	}
	if strings.IndexByte(uri, 0) >= 0 {
		return ID{}, fmt.Errorf("%w: %q", ErrNULInSAN, uri)
	}
	sid, err := spiffeid.FromString(uri)
	if err != nil {
		// go-spiffe's scheme error is unexported; classify by prefix only to
		// pick the sentinel, never to accept anything.
		if !strings.HasPrefix(strings.ToLower(uri), spiffeScheme+"://") {
			return ID{}, fmt.Errorf("%w: %q: %w", ErrNotSPIFFE, uri, err)
		}
		return ID{}, fmt.Errorf("%w: %q: %w", ErrInvalidID, uri, err)
	}
	td := sid.TrustDomain().Name()
	if len(td) > maxTrustDomainLength {
		return ID{}, fmt.Errorf("%w: trust domain longer than %d bytes", ErrInvalidID, maxTrustDomainLength)
	}
	cluster, mesh, ok := strings.Cut(td, ".")
	if !ok {
		return ID{}, fmt.Errorf("%w: trust domain %q is not <cluster>.<mesh-domain>", ErrWrongMesh, td)
	}
	if meshDomain != "" && mesh != meshDomain {
		return ID{}, fmt.Errorf("%w: trust domain %q is not in mesh %q", ErrWrongMesh, td, meshDomain)
	}
	if err := ValidateDNSLabel(cluster); err != nil {
		return ID{}, fmt.Errorf("%w: %q: cluster: %w", ErrInvalidID, uri, err)
	}
	if meshDomain == "" {
		if err := ValidateMeshDomain(mesh); err != nil {
			return ID{}, fmt.Errorf("%q: %w", uri, err)
		}
	}
	segs := strings.Split(sid.Path(), "/")
	if len(segs) != 5 || segs[0] != "" || segs[1] != pathNamespaceSegment || segs[3] != pathServiceAcctSegment {
		return ID{}, fmt.Errorf("%w: %q: path is not /ns/<namespace>/sa/<service-account>", ErrInvalidID, uri)
	}
	if err := ValidateDNSLabel(segs[2]); err != nil {
		return ID{}, fmt.Errorf("%w: %q: namespace: %w", ErrInvalidID, uri, err)
	}
	if err := validateSubdomain(segs[4], maxDNSSubdomainLength); err != nil {
		return ID{}, fmt.Errorf("%w: %q: service account: %w", ErrInvalidID, uri, err)
	}
	return ID{MeshDomain: mesh, Cluster: cluster, Namespace: segs[2], ServiceAccount: segs[4]}, nil
}

// ValidateMeshDomain checks that d is a lowercase DNS name with room left
// for a cluster label in front of it.
func ValidateMeshDomain(d string) error {
	if err := validateSubdomain(d, maxTrustDomainLength-maxDNSLabelLength-1); err != nil {
		return fmt.Errorf("%w: mesh domain %q: %w", ErrInvalidID, d, err)
	}
	return nil
}

func validateSubdomain(s string, maxLen int) error {
	if s == "" {
		return fmt.Errorf("empty")
	}
	if len(s) > maxLen {
		return fmt.Errorf("longer than %d characters", maxLen)
	}
	for label := range strings.SplitSeq(s, ".") {
		if err := ValidateDNSLabel(label); err != nil {
			return err
		}
	}
	return nil
}

// ValidateDNSLabel checks that s is a lowercase DNS label (RFC 1123). It is
// the syntax of a cluster name inside a trust domain; which names a cluster
// may take is contract.ValidateClusterName's policy, built on this.
func ValidateDNSLabel(s string) error {
	if s == "" {
		return fmt.Errorf("empty label")
	}
	if len(s) > maxDNSLabelLength {
		return fmt.Errorf("label longer than %d characters", maxDNSLabelLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i != 0 && i != len(s)-1:
		default:
			return fmt.Errorf("label %q must be lowercase letters, digits and inner dashes", s)
		}
	}
	return nil
}
