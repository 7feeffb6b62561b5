// Package sandbox runs Ferry for real on local clusters: the demo, the
// end-to-end tests of the seed's three requirements, and the benchmarks all
// use it. For each cluster it starts etcd and a kube-apiserver inside the
// cluster's own network namespace, applies what `ferry install` renders, and
// runs ferry-controller and ferry-gateway as processes with exactly the
// arguments of their rendered Deployments, authenticated as their
// ServiceAccounts, so their least-privilege RBAC is exercised too.
//
// There is no kubelet, cloud controller or kube-proxy, so the sandbox plays
// them: it writes the gateway Service's load-balancer address (the gateway's
// WAN address) and its EndpointSlice (the gateway "pod"), a Pod for each
// daemon and its Deployment's status as the deployment controller would from
// that pod (one replica each, which the install it renders asks for), and it
// runs workloads as listeners on pod addresses inside a cluster's namespace.
// With Options.Workloads it also runs kube-controller-manager's workload
// controllers and a scheduler-and-kubelet stand-in that turns every pod it
// is given Running (without running its containers), for suites such as the
// MCS conformance suite that create Deployments and pods of their own.
//
// It needs root for the network namespaces.
package sandbox
