package feed

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/tunnel"
)

// Update is one complete change from the feed, after chunks are joined.
type Update struct {
	Version uint64
	// Snapshot: Upserts is the complete set; replace everything.
	Snapshot bool
	Upserts  []exports.Export
	Deletes  []exports.Key
}

// ClientConfig configures a Client. Zero limits take the defaults in
// limits.go.
type ClientConfig struct {
	// Addresses are the remote gateway's host:port addresses, tried in turn.
	Addresses []string
	// ServerID is the identity the remote gateway must present.
	ServerID identity.ID
	// TLS is this controller's identity and trust bundle.
	TLS    *identity.Source
	Logger *slog.Logger

	MaxMessageBytes int
	// MaxExports bounds the exports of one update (all chunks).
	MaxExports int
	// MaxUpdateBytes bounds the wire size of one update (all chunks).
	MaxUpdateBytes    int
	HeartbeatInterval time.Duration
	// HeartbeatTimeout: a stream with no message for this long is dead.
	HeartbeatTimeout time.Duration
	DialTimeout      time.Duration
	BackoffInitial   time.Duration
	BackoffMax       time.Duration
	// Dialer, if set, makes the TCP connections (e.g. inside a network
	// namespace in tests).
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// Lifetime bounds how long a live connection to the gateway is trusted:
	// it closes when the gateway's chain stops verifying against TLS's
	// current bundle (checked every TrustCheckInterval), when that chain
	// expires, and at MaxConnectionAge; the feed then resumes on a new one.
	Lifetime tunnel.Lifetime
}

// Handler receives the feed. Run calls it serially from one goroutine.
type Handler interface {
	// Apply applies a snapshot (replace everything) or a delta.
	Apply(Update)
	// Connected: a stream is up and the server has answered.
	Connected()
	// Disconnected is called after every attempt that ends, whether or not
	// Connected was called for it, with the reason, so status can say why
	// the feed is down.
	Disconnected(err error)
	// Heartbeat: the server is alive and the client is current at version,
	// which the importer may record as its sync version.
	Heartbeat(version uint64)
}

// ErrHeartbeatTimeout means the server sent nothing for HeartbeatTimeout.
var ErrHeartbeatTimeout = errors.New("feed: no message from the server within the heartbeat timeout")

// errProtocol marks a server that broke the feed protocol.
var errProtocol = errors.New("feed: protocol violation")

// Client subscribes to one remote gateway's feed.
type Client struct {
	cfg ClientConfig
	log *slog.Logger
}

// Default sets every zero limit and the Logger to their defaults.
// NewClient calls it: the client owns its config.
func (c *ClientConfig) Default() {
	c.MaxMessageBytes = cmp.Or(c.MaxMessageBytes, DefaultMaxMessageBytes)
	c.MaxExports = cmp.Or(c.MaxExports, DefaultMaxExports)
	c.MaxUpdateBytes = cmp.Or(c.MaxUpdateBytes, DefaultMaxUpdateBytes)
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, DefaultHeartbeatInterval)
	c.HeartbeatTimeout = cmp.Or(c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	c.DialTimeout = cmp.Or(c.DialTimeout, DefaultDialTimeout)
	c.BackoffInitial = cmp.Or(c.BackoffInitial, DefaultBackoffInitial)
	c.BackoffMax = cmp.Or(c.BackoffMax, DefaultBackoffMax)
	c.Lifetime.Default()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// NewClient validates cfg and returns a client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.Addresses) == 0 {
		return nil, errors.New("feed: no gateway addresses")
	}
	for _, a := range cfg.Addresses {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("feed: gateway address %q: %w", a, err)
		}
	}
	if err := cfg.ServerID.Validate(); err != nil {
		return nil, fmt.Errorf("feed: server identity: %w", err)
	}
	if cfg.TLS == nil {
		return nil, errors.New("feed: no TLS source")
	}
	cfg.Default()
	if err := positive(cfg.MaxMessageBytes, cfg.MaxExports, cfg.MaxUpdateBytes, int(cfg.DialTimeout), int(cfg.BackoffInitial), int(cfg.BackoffMax)); err != nil {
		return nil, err
	}
	if cfg.HeartbeatTimeout <= cfg.HeartbeatInterval {
		return nil, fmt.Errorf("feed: heartbeat timeout %s must exceed the interval %s", cfg.HeartbeatTimeout, cfg.HeartbeatInterval)
	}
	if err := cfg.Lifetime.Validate(); err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	return &Client{cfg: cfg, log: cfg.Logger.With("component", "feed-client", "server", cfg.ServerID.String())}, nil
}

// Run subscribes and keeps the subscription up until ctx ends, then returns
// nil. It resumes from resumeFrom (0: start with a snapshot) and, after each
// reconnect, from the last version it delivered. A failed attempt moves on
// to the next address at once; after a full round of failures it backs off
// exponentially with jitter, up to BackoffMax.
func (c *Client) Run(ctx context.Context, h Handler, resumeFrom uint64) error {
	version := resumeFrom
	failures, next := 0, 0
	for ctx.Err() == nil {
		addr := c.cfg.Addresses[next%len(c.cfg.Addresses)]
		connected, v, err := c.attempt(ctx, addr, version, h)
		version = v
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("feed stream ended", "addr", addr, "connected", connected, "version", version, "err", err)
		h.Disconnected(err)
		if connected {
			failures = 0
		} else {
			failures++
			next++
		}
		var delay time.Duration
		switch {
		case failures == 0:
			// The stream was up; reconnect soon, but not in a hot loop
			// against a server that accepts and drops.
			delay = c.cfg.BackoffInitial
		case failures%len(c.cfg.Addresses) != 0:
			continue // fail over to the next address now
		default:
			delay = c.backoff(failures / len(c.cfg.Addresses))
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	return nil
}

// backoff is the delay after round failed rounds: exponential, capped,
// with ±20% jitter so that importers do not reconnect in lockstep.
func (c *Client) backoff(round int) time.Duration {
	d := c.cfg.BackoffInitial
	for i := 1; i < round && d < c.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, c.cfg.BackoffMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (c *Client) dial(addr string) (*grpc.ClientConn, error) {
	tlsCfg := c.cfg.TLS.ClientTLSConfig(c.cfg.ServerID)
	tlsCfg.NextProtos = []string{"h2"}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(guardedCreds{
			TransportCredentials: credentials.NewTLS(tlsCfg),
			lt:                   c.cfg.Lifetime, trust: c.cfg.TLS, log: c.log,
		}),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(c.cfg.MaxMessageBytes+chunkHeadroom),
			grpc.MaxCallSendMsgSize(MaxClientMessageBytes),
		),
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: c.cfg.DialTimeout}),
	}
	if c.cfg.Dialer != nil {
		opts = append(opts, grpc.WithContextDialer(c.cfg.Dialer))
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("feed: dial %s: %w", addr, err)
	}
	return conn, nil
}
