// Package exports computes a cluster's export set: the Services that
// ServiceExports offer to other clusters, as the gateway authorizes ingress
// against them and the feed publishes them. An export carries what an importer
// needs to build a mirror and nothing else: no pod IPs ever leave the cluster.
//
// The set is a pure function of the cluster's ServiceExports, Services and
// EndpointSlices (Compute); watching them is the caller's job.
package exports
