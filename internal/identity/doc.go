// Package identity is Ferry's certificate authority and peer verifier.
//
// Ferry's trust model has three tiers. The mesh root (ECDSA P-256, long-lived)
// stays with the operator. Each cluster gets an intermediate, its issuer,
// whose critical X.509 name constraints permit only URI SANs in the cluster's
// own trust domain <cluster>.<mesh-domain>, so a compromised cluster cannot
// mint another cluster's identities: Go's verifier, and ours, refuse the chain.
// Issuers sign short-lived leaves with exactly one SPIFFE URI SAN.
//
// Verification is deliberately stricter than crypto/x509 alone, because the
// bugs that mesh projects have shipped (unchecked SANs, several URI SANs
// accepted, NUL bytes in SANs) live in the gap between "the chain is valid"
// and "this is who the peer is". Every rejection has its own exported error so
// callers and tests can tell them apart with errors.Is.
//
// This package is the only one in Ferry that parses certificates or SPIFFE
// IDs; everything else receives a verified ID. It imports nothing from
// Kubernetes, so the controller, the gateway and the CLI can share it.
package identity
