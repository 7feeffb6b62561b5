package controller

import (
	"context"

	"ferry.dev/ferry/internal/feed"
	"ferry.dev/ferry/internal/importer"
)

// dialFeed adapts internal/feed's client to the importer's Feed. The
// importer defines the shapes it consumes; feed.Update has the same fields
// as importer.Update, so it converts with a type conversion.
func dialFeed(cfg importer.FeedConfig) (importer.Feed, error) {
	c, err := feed.NewClient(feed.ClientConfig{Addresses: cfg.Addresses, ServerID: cfg.ServerID, TLS: cfg.TLS, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return feedClient{c}, nil
}

type feedClient struct{ c *feed.Client }

func (f feedClient) Run(ctx context.Context, h importer.FeedHandler, resumeFrom uint64) error {
	return f.c.Run(ctx, feedHandler{h}, resumeFrom)
}

// feedHandler is a feed.Handler over an importer.FeedHandler.
type feedHandler struct{ importer.FeedHandler }

func (h feedHandler) Apply(u feed.Update) { h.FeedHandler.Apply(importer.Update(u)) }
