// Package testenv starts real, independent local Kubernetes control planes for
// Ferry's tests, demo and benchmarks: one etcd and one kube-apiserver per
// cluster, built from Go modules into bin/ by hack/build-tools.sh.
//
// There is no kubelet and no kube-controller-manager, so the package also plays
// their parts where Ferry depends on them: it writes the EndpointSlices of
// backend Services (labelled as the endpointslice controller labels them), and
// it dials a Service by resolving its ready endpoints, as kube-proxy would.
//
// Every process is started with a parent-death signal and recorded in a state
// directory, so a crashed test run leaves nothing behind that the next run does
// not reap.
package testenv
