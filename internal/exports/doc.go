// Package exports is the export model: what one cluster offers to others.
// An Export carries what an importer needs to build a mirror and nothing
// else: no pod IPs ever leave the cluster.
//
// It knows nothing of Kubernetes, so the gateway core authorizes against it
// and the feed carries it without pulling in an API client:
//
//   - Export, Key and Port describe one exported Service; Status says why a
//     ServiceExport is or is not exported.
//   - Publisher holds the current Set, an immutable snapshot whose Changed
//     channel closes when a newer one is published. A Set is a persistent
//     tree: the next one shares every export a change does not touch, so a
//     change costs O(log n), never a copy of the set. The Publisher also
//     logs which keys each recent publish changed (KeysChangedSince), so a
//     reader that skipped Sets catches up in O(keys changed). Subscribers (the feed,
//     the gateway's authorizer, the status writer) wait on it and read the
//     current Set: level-based, so a slow subscriber skips states instead
//     of queueing events, and nothing is ever dropped.
//   - The limits on one export (MaxPorts, MaxHostnames, ...) and the rules
//     for its metadata (ReservedKey, ParseAllowedClusters).
//
// Package exportwatch computes the model from an API server.
package exports
