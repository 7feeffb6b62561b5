// Package scalebench measures Ferry's control plane at scale with the real
// binaries in their own processes (issue "Control plane at 10,000 exports
// and 50 linked clusters", items 2 and 5).
//
// It starts a three-cluster sandbox (internal/tooling/sandbox): "exporter",
// whose ferry-gateway serves the export feed, "importer", whose
// ferry-controller imports from it, and "floor", never linked, where the
// API floor is measured. Each runs etcd and kube-apiserver in its own
// network namespace, and the daemons run exactly as their rendered
// Deployments say. Then, in one run:
//
//  1. N Services (each with an EndpointSlice and a ServiceExport) are
//     created on the exporter, and the importer is linked; the harness
//     times, with its own informer on the importer's API server, how long
//     until all N mirror Services and their EndpointSlices exist.
//  2. The same number and shape of objects are created directly on the
//     floor cluster's API server, as empty then as the importer's was when
//     the import began, with client-go at the controller's write
//     concurrency and QPS: the API floor the import is compared against.
//  3. One export is changed K times, one change at a time, and each change
//     is timed until the importer's watch sees the mirror change.
//  4. The controller's and gateways' RSS (/proc) and Go heap (/metrics)
//     are read after the sync.
//  5. The importer's API writes during an idle window are counted from
//     kube-apiserver's apiserver_request_total and from the controller's
//     own client metrics, split into lease writes and the rest.
//  6. M feed clients with M distinct cluster identities subscribe to the
//     exporter's feed from the harness process; the same export is changed
//     K times, and the gateway's CPU per change (/proc/<pid>/stat), its
//     RSS, the bytes each client reads per change (counted on the client's
//     connection) and the time until all M clients see each change are
//     reported.
//
// Every loop is bounded in count and by Config.Timeout; all traffic stays
// on loopback or inside the namespaces the sandbox creates. hack/benchscale
// is the command (make bench-scale).
package scalebench
