package importer

import (
	"context"
	"log/slog"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/identity"
)

// The importer consumes the export feed (internal/feed) through these
// types, which have exactly the shape of feed.Update, feed.Handler and
// feed.ClientConfig. Defining them here keeps the dependency pointing the
// right way (the consumer owns the interface) and lets tests use an
// in-memory feed. cmd wiring adapts *feed.Client with FeedFunc; because the
// struct shapes match, feed.Update converts to Update with a plain type
// conversion.

// Update is one feed message: a complete snapshot, or a delta.
type Update struct {
	Version uint64
	// Snapshot means Upserts is the complete export set.
	Snapshot bool
	Upserts  []exports.Export
	Deletes  []exports.Key
}

// FeedHandler receives a feed stream's events. Calls are sequential.
type FeedHandler interface {
	Apply(Update)
	Connected()
	Disconnected(err error)
	Heartbeat(version uint64)
}

// Feed is one subscription. Run streams into h until ctx ends, reconnecting
// (and failing over across addresses) as the feed client sees fit; it
// resumes from resumeFrom when the server still has that version, and sends
// a snapshot otherwise. If Run returns before ctx ends the session calls it
// again after a backoff, resuming from the last applied version.
type Feed interface {
	Run(ctx context.Context, h FeedHandler, resumeFrom uint64) error
}

// FeedConfig is feed.ClientConfig.
type FeedConfig struct {
	Addresses []string
	ServerID  identity.ID
	TLS       *identity.Source
	Logger    *slog.Logger
}

// FeedDialer makes a Feed for one Link (feed.NewClient, adapted).
type FeedDialer func(FeedConfig) (Feed, error)
