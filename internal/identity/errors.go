package identity

import "errors"

// Rejections of a peer. Each is distinct so that callers can report, count
// and test the precise reason; verification wraps them with detail using %w.
var (
	ErrNoCertificate           = errors.New("identity: peer presented no certificate")
	ErrSelfSigned              = errors.New("identity: certificate is self-signed")
	ErrLeafIsCA                = errors.New("identity: leaf certificate is a CA")
	ErrUnknownAuthority        = errors.New("identity: certificate does not chain to a root in the trust bundle")
	ErrExpired                 = errors.New("identity: certificate has expired")
	ErrNotYetValid             = errors.New("identity: certificate is not valid yet")
	ErrMissingEKU              = errors.New("identity: certificate lacks the extended key usage for its role")
	ErrNoURISAN                = errors.New("identity: certificate has no URI SAN")
	ErrMultipleURISANs         = errors.New("identity: certificate has more than one URI SAN")
	ErrUnexpectedSAN           = errors.New("identity: certificate has a DNS, IP or email SAN")
	ErrNULInSAN                = errors.New("identity: SAN contains a NUL byte")
	ErrNotSPIFFE               = errors.New("identity: URI is not a SPIFFE ID")
	ErrInvalidID               = errors.New("identity: invalid Ferry SPIFFE ID")
	ErrWrongMesh               = errors.New("identity: trust domain is outside the mesh domain")
	ErrTrustDomainNotPermitted = errors.New("identity: issuer is not permitted to sign this trust domain")
	ErrChainTooDeep            = errors.New("identity: certificate chain is too deep")
	ErrKeyTooLarge             = errors.New("identity: RSA key is larger than allowed")
	ErrWeakKey                 = errors.New("identity: key is too weak")
	ErrUnsupportedKey          = errors.New("identity: unsupported public key type")
	ErrMalformedCertificate    = errors.New("identity: certificate cannot be parsed")
	ErrInvalidChain            = errors.New("identity: certificate chain is invalid")
	ErrUnexpectedID            = errors.New("identity: peer presented an unexpected identity")
	ErrNotAuthorized           = errors.New("identity: peer is not authorized")
	ErrNoBundle                = errors.New("identity: no trust bundle")
	ErrRevoked                 = errors.New("identity: certificate chain contains a revoked key")
)

// Errors about local material rather than a peer.
var (
	ErrSourceEmpty  = errors.New("identity: source has no certificate yet")
	ErrKeyMismatch  = errors.New("identity: private key does not match certificate")
	ErrNotCA        = errors.New("identity: certificate is not a CA")
	ErrInvalidPEM   = errors.New("identity: invalid PEM")
	ErrKeyInCertPEM = errors.New("identity: private key found where only certificates belong")
	ErrCAValidity   = errors.New("identity: requested validity outlives the signing CA")
	ErrNotAnIssuer  = errors.New("identity: CA has no trust domain name constraint")
	ErrMeshMismatch = errors.New("identity: root's name constraints do not cover the mesh domain")

	ErrInvalidRevocation = errors.New("identity: invalid deny list entry")
	ErrTooManyRevoked    = errors.New("identity: deny list is too long")
	ErrRevokedRoot       = errors.New("identity: deny list names a root of the bundle")
)
