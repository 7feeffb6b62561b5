// Package feed is the export feed: how a cluster's gateway publishes its
// export set to the controllers of other clusters, over gRPC on the
// gateway's mTLS port (ALPN "h2"). See docs/feed.md for the protocol.
//
// The Server follows an ExportSource (an exportwatch.Watcher) level-based: a
// journal turns each changed Set into a version and keeps a bounded history
// of per-export changes. Each stream remembers only the version it has sent
// and, when the journal advances, computes that importer's delta, filtered
// at the source by the export's allowed clusters. A stream is a snapshot (or
// the delta since a resumed version), then deltas and heartbeats.
//
// The Client dials a remote gateway, verifies its identity, fails over
// across addresses, reconnects with backoff and resumes from the last
// version it delivered. It hands complete Updates to a Handler, serially.
package feed
