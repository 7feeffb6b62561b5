package tunnel

import (
	"sync"

	"github.com/libp2p/go-yamux/v5"
)

// Stream is one tunnel stream: a yamux stream, whose CloseWrite sends FIN
// so that it takes part in Splice's half-close, and whose slot in its
// session is released on Close.
type Stream struct {
	*yamux.Stream
	closeOnce sync.Once
	onClose   func() // egress: releases the stream's slot in its session
}

var _ Conn = (*Stream)(nil)

// Close ends the stream for good: it sends FIN if this side had not yet,
// stops reading (what the peer still sends is discarded), wakes any
// goroutine blocked in Read or Write, and frees the stream's window at
// once, whatever the peer does.
func (s *Stream) Close() error {
	err := s.Stream.Close()
	s.closeOnce.Do(func() {
		if s.onClose != nil {
			s.onClose()
		}
	})
	return err
}

// Observer receives the transport's events for metrics. Implementations must
// be cheap and safe for concurrent use; label values they receive are
// bounded: a reason from a fixed set, or a cluster name from a verified
// identity or from local configuration.
type Observer interface {
	// Rejected counts a connection or stream refused before any stream
	// handler ran.
	Rejected(reason string)
	// Sessions reports the number of live outbound sessions to a remote
	// cluster.
	Sessions(remote string, n int)
	// RemoteUp reports whether at least one session to remote is live.
	RemoteUp(remote string, up bool)
	// ForgetRemote is called when a remote is removed from configuration, so
	// its series can be deleted.
	ForgetRemote(remote string)
	// InboundSessions adds delta to the number of live inbound sessions from
	// a caller cluster.
	InboundSessions(cluster string, delta int)
}

// NopObserver ignores everything.
type NopObserver struct{}

func (NopObserver) Rejected(string)             {}
func (NopObserver) Sessions(string, int)        {}
func (NopObserver) RemoteUp(string, bool)       {}
func (NopObserver) ForgetRemote(string)         {}
func (NopObserver) InboundSessions(string, int) {}

// Rejection reasons reported by the transport (before a stream handler runs).
const (
	ReasonHandshake        = "tls_handshake"
	ReasonHandshakeTimeout = "handshake_timeout"
	ReasonNoClientCert     = "no_client_certificate"
	ReasonUntrustedPeer    = "untrusted_peer"
	ReasonHandshakeLimit   = "handshake_limit"
	ReasonIPHandshakeLimit = "ip_handshake_limit"
	// ReasonHandshakeEvicted: a pending handshake closed to make room for
	// one from a source holding fewer (see Server admission).
	ReasonHandshakeEvicted = "handshake_evicted"
	ReasonConnectionLimit  = "connection_limit"
	ReasonCallerLimit      = "caller_limit"
	ReasonStreamLimit      = "stream_limit"
	// ReasonCallerStreamMemory and ReasonTotalStreamMemory: a stream refused,
	// or a session closed, for MaxCallerStreamMemory or MaxTotalStreamMemory.
	ReasonCallerStreamMemory = "caller_stream_memory"
	ReasonTotalStreamMemory  = "stream_memory"
	ReasonForbiddenIdentity  = "forbidden_identity"
	ReasonProtocol           = "alpn"
	ReasonDraining           = "draining"
	ReasonFeedUnavailable    = "feed_unavailable"
	ReasonFeedCallerLimit    = "feed_caller_limit"
	// ReasonH2Flood: a feed connection closed by the h2 guard.
	ReasonH2Flood = "h2_flood"
)
