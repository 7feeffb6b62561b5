package tunnel

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"ferry.dev/ferry/internal/identity"
)

var (
	// ErrUnknownRemote: Open named a cluster that SetRemotes does not know.
	ErrUnknownRemote = errors.New("tunnel: unknown remote cluster")
	// ErrPoolExhausted: every live session to the remote is at
	// MaxStreamsPerSession.
	ErrPoolExhausted = errors.New("tunnel: all sessions to remote are full")
	// ErrRemoteDown: there is no live session to the remote and the last
	// attempt to dial it failed; Open fails fast instead of waiting.
	ErrRemoteDown = errors.New("tunnel: remote cluster unreachable")
	// ErrClientClosed: the client was closed.
	ErrClientClosed = errors.New("tunnel: client closed")
)

// ClientTLS is the certificate source for dialing remote gateways.
// identity.Source satisfies it: the config it returns must fail the
// handshake unless the server presents expect. Its TrustSource re-verifies
// live remotes when the bundle changes (lifetime.go).
type ClientTLS interface {
	ClientTLSConfig(expect identity.ID) *tls.Config
	TrustSource
}

// ContextDialer dials TCP; *net.Dialer satisfies it.
type ContextDialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Remote is how to reach one remote cluster's gateway: what its Link says.
type Remote struct {
	// Addresses are host:port of the remote gateway port. Sessions are
	// spread over them and a failed dial moves on to the next.
	Addresses []string
	// Identity is what the remote gateway must present.
	Identity identity.ID
}

func (r Remote) equal(o Remote) bool {
	return r.Identity == o.Identity && slices.Equal(r.Addresses, o.Addresses)
}

// ClientOptions configure NewClient.
type ClientOptions struct {
	TLS ClientTLS
	// Dialer defaults to a *net.Dialer.
	Dialer ContextDialer
	Limits Limits
	// PoolSize is the number of sessions kept open to each remote (default
	// 2): more than one so that a remote's replicas share the load and one
	// dying connection does not stall every stream.
	PoolSize int
	// DialTimeout bounds the TCP connect to a remote gateway (default 5s).
	DialTimeout time.Duration
	// MaxBackoff caps the wait between failed dials to a remote (default
	// 10s); it starts at 100ms and doubles.
	MaxBackoff time.Duration
	Observer   Observer
	Logger     *slog.Logger
}

// Client is the egress side of the transport: for each remote cluster it
// keeps a small pool of long-lived, verified yamux sessions and opens one
// stream per client connection.
type Client struct {
	o   ClientOptions
	log *slog.Logger

	// budget bounds the growth of receive windows, per remote and in all;
	// opening windows are bounded by the pools' stream counts.
	budget *streamBudget

	mu     sync.RWMutex
	pools  map[string]*pool
	closed bool
}

// Client defaults.
const (
	DefaultPoolSize    = 2
	DefaultDialTimeout = 5 * time.Second
	DefaultMaxBackoff  = 10 * time.Second
)

// Default sets every zero field but Limits to its default. NewClient calls
// it; Limits arrive complete from their owner (gateway.Limits.Default).
func (o *ClientOptions) Default() {
	if o.Dialer == nil {
		o.Dialer = &net.Dialer{}
	}
	o.PoolSize = cmp.Or(o.PoolSize, DefaultPoolSize)
	o.DialTimeout = cmp.Or(o.DialTimeout, DefaultDialTimeout)
	o.MaxBackoff = cmp.Or(o.MaxBackoff, DefaultMaxBackoff)
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// NewClient checks the options. Call SetRemotes to start dialing.
func NewClient(o ClientOptions) (*Client, error) {
	if o.TLS == nil {
		return nil, errors.New("tunnel: client needs TLS")
	}
	if err := o.Limits.Validate(); err != nil {
		return nil, err
	}
	o.Default()
	if o.PoolSize < 0 || o.DialTimeout < 0 || o.MaxBackoff < 0 {
		return nil, errors.New("tunnel: PoolSize, DialTimeout and MaxBackoff must not be negative")
	}
	return &Client{
		o: o, log: o.Logger.With("component", "tunnel-client"), pools: map[string]*pool{},
		budget: newStreamBudget(o.Limits, false, nil),
	}, nil
}

// SetRemotes replaces the set of remote clusters. Unchanged remotes keep
// their sessions. A changed remote (addresses or identity) gets a new pool;
// the old sessions take no new streams and close when their streams end.
func (c *Client) SetRemotes(remotes map[string]Remote) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	for name, p := range c.pools {
		r, ok := remotes[name]
		if ok && r.equal(p.remote) {
			continue
		}
		p.retire()
		delete(c.pools, name)
		if !ok {
			c.o.Observer.ForgetRemote(name)
		}
	}
	for name, r := range remotes {
		if _, ok := c.pools[name]; ok {
			continue
		}
		r.Addresses = slices.Clone(r.Addresses)
		p := newPool(c, name, r)
		p.mu.Lock()
		p.reportLocked()
		p.mu.Unlock()
		c.pools[name] = p
		go p.maintain()
	}
}

// Remotes returns the names of the configured remotes.
func (c *Client) Remotes() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Sorted(maps.Keys(c.pools))
}

// Live reports whether at least one session to cluster is up.
func (c *Client) Live(cluster string) bool {
	c.mu.RLock()
	p := c.pools[cluster]
	c.mu.RUnlock()
	return p != nil && p.liveCount() > 0
}

// RetiringSessions is the sessions to every remote that were retired and
// still carry streams (Server.RetiringSessions says why that matters).
func (c *Client) RetiringSessions() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, p := range c.pools {
		p.mu.Lock()
		for _, s := range p.sessions {
			if s.leaving && !s.sess.IsClosed() {
				n++
			}
		}
		p.mu.Unlock()
	}
	return n
}

// Open opens a stream to target in cluster and waits for ingress to accept
// it. A rejection is a *RejectError; nothing has been sent from the caller's
// connection yet, so the caller may try another destination. ctx bounds the
// wait for a session and for the reply.
func (c *Client) Open(ctx context.Context, cluster string, target Target) (*Stream, error) {
	c.mu.RLock()
	p, closed := c.pools[cluster], c.closed
	c.mu.RUnlock()
	if closed {
		return nil, ErrClientClosed
	}
	if p == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRemote, cluster)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.o.Limits.StreamOpenTimeout)
		defer cancel()
	}
	// A stream can fail before carrying anything when its session dies or
	// retires. Those are safe to retry on another session.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		cs, err := p.pick(ctx)
		if err != nil {
			return nil, err
		}
		st, err := cs.open(ctx, target)
		if err == nil {
			return st, nil
		}
		var re *RejectError
		if errors.As(err, &re) {
			re.Cluster, re.Target = cluster, target
		}
		if ctx.Err() != nil {
			return nil, err
		}
		// A retiring session answers StatusDraining (and is now leaving):
		// another session takes the stream, a new one if need be.
		if errors.As(err, &re) && re.Status != StatusDraining {
			return nil, err
		}
		lastErr = err
	}
	return nil, lastErr
}

// Close closes every session. Streams in flight are cut.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for name, p := range c.pools {
		p.shutdown()
		delete(c.pools, name)
	}
	return nil
}
