// Package exportwatch keeps a cluster's export set (package exports) current
// from its API server, and writes the MCS conditions back:
//
//   - Compute, a pure function of the cluster's ServiceExports, Services and
//     EndpointSlices, returns the exports and one Status per ServiceExport
//     (why it is or is not exported). DesiredConditions and MergeConditions
//     turn a Status into the MCS conditions Valid, Ready and Conflict.
//   - Watcher recomputes only the keys an event touched and publishes
//     through an exports.Publisher. Its cache is also where the gateway
//     reads endpoints (IndexServiceName), so Services and EndpointSlices
//     are watched once.
//   - StatusWriter writes ServiceExport conditions, only when they change.
package exportwatch
