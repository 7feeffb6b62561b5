// Package exports computes a cluster's export set: the Services that
// ServiceExports offer to other clusters, as the gateway authorizes ingress
// against them and the feed publishes them. An export carries what an importer
// needs to build a mirror and nothing else: no pod IPs ever leave the cluster.
//
// The package has three layers:
//
//   - Compute, a pure function of the cluster's ServiceExports, Services and
//     EndpointSlices, returns the exports and one Status per ServiceExport
//     (why it is or is not exported). DesiredConditions and MergeConditions
//     turn a Status into the MCS conditions Valid, Ready and Conflict.
//   - Publisher holds the current Set, an immutable snapshot whose Changed
//     channel closes when a newer one is published. Subscribers (the feed, the
//     gateway's authorizer, the StatusWriter) wait on it and read the current
//     Set: level-based, so a slow subscriber skips states instead of queueing
//     events, and nothing is ever dropped.
//   - Watcher keeps a Publisher current from an API server; StatusWriter
//     writes ServiceExport conditions, only when they change.
package exports
