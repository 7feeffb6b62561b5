// Package identitytest builds throwaway meshes for tests of packages that
// consume internal/identity (tunnel, gateway, feed): a root, per-cluster
// issuers and ready Sources for the gateway and controller identities, plus
// deliberately broken certificates for negative tests. Test code only.
package identitytest
