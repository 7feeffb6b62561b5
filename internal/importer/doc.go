// Package importer is the importing half of Ferry's controller: for every
// Link it subscribes to the remote gateway's export feed, probes the remote
// gateway through the data path, and reconciles the local cluster to the
// desired state that internal/mirror computes.
//
// One controller-runtime controller, keyed by Link name, does all writes, so
// one Link is never reconciled twice at once and bursts of feed updates
// coalesce in its work queue. Each Link also has a session (feed stream and
// probe loop) that lives as long as the Link and only asks for reconciles;
// it never writes to the API itself.
//
// Reconcile is level-based: desired = mirror.Desired(feed state, Link,
// gateway endpoints, health, cache); the diff against the informer cache is
// applied and nothing else, so a reconcile with nothing to change writes
// nothing. docs/importer.md describes ownership, the egress port contract,
// health and staleness, and the Link status.
package importer
