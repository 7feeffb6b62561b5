package feed

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/feed/feedpb"
	"ferry.dev/ferry/internal/identity"
)

// ExportSource is the export set the feed publishes: the current Set, whose
// Changed channel closes when a newer one exists. exportwatch.Watcher and
// exports.Publisher satisfy it.
type ExportSource interface {
	Current() *exports.Set
}

// changeLister is an ExportSource that can list the keys that may differ
// between two of its Sets however far apart (an exports.Publisher can).
// Set.ChangedSince knows only a Set's immediate predecessor and compares
// every export otherwise; with this, a journal that skipped Sets under load
// still pays O(keys changed), not O(exports).
type changeLister interface {
	KeysChangedSince(prev, cur *exports.Set) ([]exports.Key, bool)
}

// ServerOptions configure a Server. LocalCluster is required; zero limits
// take the defaults in limits.go.
type ServerOptions struct {
	// LocalCluster is this cluster's name. Its own identities are refused:
	// a cluster never imports from itself through its gateway.
	LocalCluster string
	// MeshDomain, if set, is required of callers (the TLS layer already
	// verified them against this mesh's bundle; this is a second check).
	MeshDomain string
	Logger     *slog.Logger
	// Metrics, if nil, are created unregistered.
	Metrics *Metrics

	MaxMessageBytes      int
	MaxHistory           int
	MaxSubscribers       int
	MaxStreamsPerCluster int
	HeartbeatInterval    time.Duration
	HeartbeatTimeout     time.Duration
}

// Server serves the feed over gRPC on listeners of already-TLS conns.
type Server struct {
	feedpb.UnimplementedFeedServer

	opts    ServerOptions
	log     *slog.Logger
	metrics *Metrics
	src     ExportSource
	journal *journal
	grpc    *grpc.Server

	followOnce sync.Once
	stop       chan struct{}
	stopOnce   sync.Once

	mu         sync.Mutex
	total      int
	perCluster map[string]int
}

// Default sets every zero limit, the Logger and the Metrics to their
// defaults. NewServer calls it: the server owns its options.
func (o *ServerOptions) Default() {
	o.MaxMessageBytes = cmp.Or(o.MaxMessageBytes, DefaultMaxMessageBytes)
	o.MaxHistory = cmp.Or(o.MaxHistory, DefaultMaxHistory)
	o.MaxSubscribers = cmp.Or(o.MaxSubscribers, DefaultMaxSubscribers)
	o.MaxStreamsPerCluster = cmp.Or(o.MaxStreamsPerCluster, DefaultMaxStreamsPerCluster)
	o.HeartbeatInterval = cmp.Or(o.HeartbeatInterval, DefaultHeartbeatInterval)
	o.HeartbeatTimeout = cmp.Or(o.HeartbeatTimeout, DefaultHeartbeatTimeout)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics, _ = NewMetrics(nil) // cannot fail without a registry
	}
}

// NewServer returns a feed server publishing src.
func NewServer(src ExportSource, opts ServerOptions) (*Server, error) {
	if err := contract.ValidateClusterName(opts.LocalCluster); err != nil {
		return nil, fmt.Errorf("feed: local cluster: %w", err)
	}
	if src == nil {
		return nil, errors.New("feed: no export source")
	}
	opts.Default()
	if err := positive(opts.MaxMessageBytes, opts.MaxHistory, opts.MaxSubscribers, opts.MaxStreamsPerCluster); err != nil {
		return nil, err
	}
	if opts.HeartbeatTimeout <= opts.HeartbeatInterval {
		return nil, fmt.Errorf("feed: heartbeat timeout %s must exceed the interval %s", opts.HeartbeatTimeout, opts.HeartbeatInterval)
	}
	if opts.MaxMessageBytes < 64<<10 {
		return nil, fmt.Errorf("feed: max message bytes %d is below the 64 KiB that one export may need", opts.MaxMessageBytes)
	}
	s := &Server{
		opts:       opts,
		log:        opts.Logger.With("component", "feed-server"),
		metrics:    opts.Metrics,
		src:        src,
		journal:    newJournal(opts.MaxHistory, time.Now()),
		stop:       make(chan struct{}),
		perCluster: map[string]int{},
	}
	s.grpc = grpc.NewServer(
		grpc.Creds(ServerCredentials()),
		grpc.MaxRecvMsgSize(MaxClientMessageBytes),
		grpc.MaxSendMsgSize(opts.MaxMessageBytes+chunkHeadroom),
		grpc.MaxConcurrentStreams(MaxStreamsPerConn),
		// HTTP/2 pings find a dead peer even while a Send is blocked on flow
		// control, where the application heartbeat cannot run.
		// MaxConnectionIdle frees a connection that holds no stream, so idle
		// h2 connections cannot pile up against the ingress port's
		// connection limit.
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time: opts.HeartbeatInterval, Timeout: opts.HeartbeatTimeout - opts.HeartbeatInterval,
			MaxConnectionIdle: MaxConnectionIdle,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: opts.HeartbeatInterval / 2}),
	)
	if cl, ok := src.(changeLister); ok {
		s.journal.lister = cl
	}
	feedpb.RegisterFeedServer(s.grpc, s)
	return s, nil
}

// Serve serves the feed on l until GracefulStop or Stop. l's conns must be
// *tls.Conn from a listener configured by identity.Source.ServerTLSConfig
// with ALPN "h2", handshaken or not, or conns that embed one (see
// ServerCredentials).
func (s *Server) Serve(l net.Listener) error {
	s.followOnce.Do(func() { go s.follow() })
	if err := s.grpc.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("feed: serve: %w", err)
	}
	return nil
}

// GracefulStop stops accepting streams and ends the running ones (feed
// streams never finish on their own, so it does not wait for them to),
// then returns when their handlers have returned.
//
// A subscriber that stopped reading can block a Send on flow control forever,
// so callers bound it: GracefulStopTimeout gives up and closes everything.
func (s *Server) GracefulStop() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.grpc.GracefulStop()
}

// GracefulStopTimeout is GracefulStop bounded by d, after which every
// connection is closed.
func (s *Server) GracefulStopTimeout(d time.Duration) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		s.Stop()
		<-done
	}
}

// Stop closes every connection at once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.grpc.Stop()
}

// Version is the feed's current version, for status and tests.
func (s *Server) Version() uint64 {
	v, _ := s.journal.view()
	return v
}

// follow advances the journal with the source's sets until Stop.
func (s *Server) follow() {
	for {
		set := s.src.Current()
		s.journal.advance(set)
		v, _ := s.journal.view()
		s.metrics.Version.Set(float64(v & seqMask))
		select {
		case <-s.stop:
			return
		case <-set.Changed():
		}
	}
}

// authorize returns the caller's verified identity, or a gRPC error. Only
// controllers (ferry-system/ferry-controller) of other clusters may
// subscribe.
func (s *Server) authorize(ctx context.Context) (identity.ID, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return identity.ID{}, status.Error(codes.Unauthenticated, "no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return identity.ID{}, status.Error(codes.Unauthenticated, "not a TLS peer")
	}
	id, err := identity.PeerID(ti.State)
	if err != nil {
		return identity.ID{}, status.Errorf(codes.Unauthenticated, "peer identity: %v", err)
	}
	if s.opts.MeshDomain != "" && id.MeshDomain != s.opts.MeshDomain {
		return id, status.Errorf(codes.PermissionDenied, "%s is not in mesh %s", id, s.opts.MeshDomain)
	}
	if err := contract.AllowRemote(s.opts.LocalCluster, contract.ControllerServiceAccount)(id); err != nil {
		return id, status.Errorf(codes.PermissionDenied, "%s may not subscribe: %v", id, err)
	}
	return id, nil
}

// admit enforces the subscriber limits; release undoes it.
func (s *Server) admit(cluster string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total >= s.opts.MaxSubscribers {
		return nil, status.Errorf(codes.ResourceExhausted, "%d feed subscribers already", s.total)
	}
	if s.perCluster[cluster] >= s.opts.MaxStreamsPerCluster {
		return nil, status.Errorf(codes.ResourceExhausted, "cluster %s already has %d feed streams", cluster, s.perCluster[cluster])
	}
	s.total++
	s.perCluster[cluster]++
	s.metrics.Subscribers.Inc()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.total--
		if s.perCluster[cluster]--; s.perCluster[cluster] == 0 {
			delete(s.perCluster, cluster)
		}
		s.metrics.Subscribers.Dec()
	}, nil
}

// Subscribe implements feedpb.FeedServer.
func (s *Server) Subscribe(stream feedpb.Feed_SubscribeServer) error {
	id, err := s.authorize(stream.Context())
	if err != nil {
		reason := rejectForbidden
		if status.Code(err) == codes.Unauthenticated {
			reason = rejectUnauthenticated
		}
		s.metrics.Rejected.WithLabelValues(reason).Inc()
		s.log.Warn("feed subscription refused", "peer", id.String(), "err", err)
		return err
	}
	release, err := s.admit(id.Cluster)
	if err != nil {
		s.metrics.Rejected.WithLabelValues(rejectLimit).Inc()
		s.log.Warn("feed subscription refused", "peer", id.String(), "err", err)
		return err
	}
	defer release()
	sub := newSubscriber(s, stream, id)
	err = sub.run()
	if st, ok := status.FromError(err); ok && st.Code() == codes.InvalidArgument {
		s.metrics.Rejected.WithLabelValues(rejectProtocol).Inc()
	}
	s.log.Info("feed stream ended", "cluster", id.Cluster, "sent_version", sub.sent, "err", err)
	return err
}
