// Package e2e proves the three requirements of "Architecting for
// Multicluster Kubernetes" on a running sandbox (internal/tooling/sandbox): three
// clusters, east, west and north, each with its own control plane and
// network namespace, with Ferry installed and west importing from east and
// north. Each test prints the figures it measured. docs/requirements.md maps
// each requirement to its test.
package e2e
