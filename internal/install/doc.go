// Package install renders everything one cluster needs to run Ferry — the
// Namespace, the CRDs, ServiceAccounts, least-privilege RBAC, the issuer
// Secret, the controller and gateway Deployments, the gateway Service and its
// PodDisruptionBudget — as typed Kubernetes objects, and encodes them as YAML
// or JSON for `kubectl apply -f -`.
//
// Rendering is a pure function of Options: no cluster, no files (the one
// impurity is that the issuer must be valid now, checked by internal/identity).
// The CLI loads files and flags into Options; the Helm chart in charts/ferry
// is generated from the same renderer (see Chart), so the two cannot drift.
// docs/install.md and docs/rbac.md explain the choices.
package install
