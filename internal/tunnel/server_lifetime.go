package tunnel

import (
	"crypto/tls"
	"log/slog"
	"sync/atomic"

	"github.com/libp2p/go-yamux/v5"

	"ferry.dev/ferry/internal/identity"
)

// inbound is one tunnel session on ingress: its served streams, and whether
// it was retired (lifetime.go), after which it closes with its last stream.
type inbound struct {
	sess     *yamux.Session
	active   atomic.Int64
	retiring atomic.Bool
}

// retire answers every new stream StatusDraining, so the peer's egress
// moves it and the streams after it to a new session, and closes the session
// once idle. (yamux's own GoAway would not do: its receiver closes the whole
// session, cutting the streams in flight.)
func (in *inbound) retire() {
	in.retiring.Store(true)
	if in.active.Load() == 0 {
		_ = in.sess.Close()
	}
}

// streamDone ends a served stream; the last one closes a retired session.
// With retire's store-then-load, one of the two sees the other.
func (in *inbound) streamDone() {
	if in.active.Add(-1) == 0 && in.retiring.Load() {
		_ = in.sess.Close()
	}
}

// guard runs the lifetime guard of an inbound connection (a tunnel session
// or a handed-off feed connection) until done is closed. Peers here are TLS
// clients; own is our certificate as it was before the handshake.
func (s *Server) guard(tc *tls.Conn, own *tls.Certificate, retire, closeNow func(), done <-chan struct{}, log *slog.Logger) {
	guard{
		lt: s.o.Limits.Lifetime, trust: s.o.TLS, role: identity.PeerClient,
		chain:  tc.ConnectionState().PeerCertificates,
		own:    own,
		retire: retire,
		cut: func(reason string) {
			if reason != reasonAge {
				s.o.Observer.Rejected(reason)
			}
			closeNow()
		},
		done: done, log: log,
	}.run()
}

// RetiringSessions is the inbound tunnel sessions that were retired (at
// their age, or because this side's certificate was renewed) and still
// carry streams. Until they end, those streams ride on the certificates of
// the session's handshake: a trust rotation must not drop a root they
// depend on (docs/identity.md, "Rotation").
func (s *Server) RetiringSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for sess, in := range s.sessions {
		if in.retiring.Load() && !sess.IsClosed() {
			n++
		}
	}
	return n
}
