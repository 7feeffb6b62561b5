package importer

import (
	"context"

	"ferry.dev/ferry/internal/feed"
)

// Feed is one subscription to a remote's export feed: *feed.Client in
// production, an in-memory feed in tests. Run streams into h until ctx
// ends, reconnecting (and failing over across addresses) as the feed client
// sees fit; it resumes from resumeFrom when the server still has that
// version, and sends a snapshot otherwise. If Run returns before ctx ends
// the session calls it again after a backoff, resuming from the last
// applied version.
type Feed interface {
	Run(ctx context.Context, h feed.Handler, resumeFrom uint64) error
}

// FeedDialer makes a Feed for one Link.
type FeedDialer func(feed.ClientConfig) (Feed, error)

// DialFeed is the FeedDialer of production: a feed.Client.
func DialFeed(cfg feed.ClientConfig) (Feed, error) { return feed.NewClient(cfg) }
