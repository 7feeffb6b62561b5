// Package conformance runs the upstream MCS API conformance suite
// (third_party/mcs-api-conformance, built by hack/build-conformance.sh)
// against Ferry on two sandbox clusters, east and west, linked both ways: a
// cluster learns of another's export, and so of a conflict, only through a
// Link. The sandbox runs kube-controller-manager's workload controllers and a
// kubelet stand-in, so the suite's namespaces, Deployments and request pods
// behave as in a real cluster.
//
// The specs that exec into a pod (the DNS and Connectivity labels, and the
// unlabelled "not exported" connectivity check) cannot run without a real
// kubelet; Skipped says so and docs/mcs-conformance.md names the Ferry tests
// that cover the same behaviour. `make conformance` and this package's tests
// run it; the tests also check, on the same clusters, the two-cluster
// conflict rules the MCS API leaves to the implementation.
package conformance
