package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-yamux/v5"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("tunnel: server closed")

// errForbiddenPeer marks handshake failures caused by our own peer policy, so
// they are counted as forbidden_identity rather than as a TLS failure.
var errForbiddenPeer = errors.New("peer identity not allowed on this port")

// ServerTLS is the certificate source for the ingress port. identity.Source
// satisfies it. allow is called with the verified peer identity during the
// handshake; an error aborts the handshake. Its TrustSource re-verifies live
// peers when the bundle changes (lifetime.go).
type ServerTLS interface {
	ServerTLSConfig(allow func(identity.ID) error) *tls.Config
	TrustSource
}

// StreamHandler serves one accepted tunnel stream from an authenticated
// remote gateway. ctx ends when the session or the server closes. The server
// closes s after ServeStream returns.
type StreamHandler interface {
	ServeStream(ctx context.Context, caller identity.ID, s *Stream)
}

// ServerOptions configure NewServer.
type ServerOptions struct {
	// Local is this gateway's identity. Its mesh and cluster decide who may
	// connect: only other clusters of the same mesh, never our own (no
	// hairpin through a gateway).
	Local identity.ID
	TLS   ServerTLS
	// Handler serves tunnel streams (ALPN ferry-tunnel/1).
	Handler StreamHandler
	// H2, if set, receives connections that negotiated ALPN h2 from remote
	// controllers (the export feed). If nil, such connections are refused.
	H2       *ConnListener
	Limits   Limits
	Observer Observer
	Logger   *slog.Logger
}

// Server is the ingress side of the transport: it terminates TLS on the
// gateway port, enforces the connection limits and the per-protocol peer
// policy, and runs one yamux session per tunnel connection.
type Server struct {
	o      ServerOptions
	tlsCfg *tls.Config
	log    *slog.Logger

	// cancels end the contexts of the Serve calls, which every handshake,
	// session and stream derives from; Shutdown calls them once drained.
	cancels []context.CancelFunc

	conns   atomic.Int64 // established connections, all protocols
	streams *tracker
	budget  *streamBudget

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*yamux.Session]*inbound
	pending   map[net.Conn]struct{} // mid-handshake, closed on hard stop
	// Handshake slots (admission.go): by sourceKey, oldest first.
	pendingBySrc map[string][]*pendingHS
	pendingN     int
	pendingSeq   uint64
	perCaller    map[identity.ID]int // tunnel sessions
	h2PerCaller  map[identity.ID]int // handed-off h2 conns not yet closed
	draining     bool
}

// Default sets the Observer and Logger when unset. NewServer calls it;
// Limits arrive complete from their owner (gateway.Limits.Default).
func (o *ServerOptions) Default() {
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// NewServer checks the options and prepares the TLS configuration.
func NewServer(o ServerOptions) (*Server, error) {
	if o.TLS == nil || o.Handler == nil {
		return nil, errors.New("tunnel: server needs TLS and Handler")
	}
	if err := o.Local.Validate(); err != nil {
		return nil, fmt.Errorf("tunnel: local identity: %w", err)
	}
	if err := o.Limits.Validate(); err != nil {
		return nil, err
	}
	o.Default()
	s := &Server{
		o:            o,
		log:          o.Logger.With("component", "tunnel-server"),
		streams:      newTracker(),
		budget:       newStreamBudget(o.Limits, true, o.Observer.Rejected),
		listeners:    map[net.Listener]struct{}{},
		sessions:     map[*yamux.Session]*inbound{},
		pending:      map[net.Conn]struct{}{},
		pendingBySrc: map[string][]*pendingHS{},
		perCaller:    map[identity.ID]int{},
		h2PerCaller:  map[identity.ID]int{},
	}
	protos := []string{ALPNTunnel}
	if o.H2 != nil {
		protos = append(protos, ALPNH2)
	}
	s.tlsCfg = withHelloDeadline(withALPN(o.TLS.ServerTLSConfig(s.allowHandshake), protos))
	return s, nil
}

// withHelloDeadline makes cfg, once the ClientHello has been read, lift the
// connection's deadline from ClientHelloTimeout to the overall handshake
// deadline (see Server.handshake).
func withHelloDeadline(cfg *tls.Config) *tls.Config {
	inner := cfg.GetConfigForClient
	cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		if c, ok := h.Conn.(*countedConn); ok && !c.handshakeDeadline.IsZero() {
			_ = c.SetDeadline(c.handshakeDeadline)
		}
		if inner == nil {
			return nil, nil // use cfg
		}
		return inner(h)
	}
	return cfg
}

// withALPN returns a copy of cfg that negotiates TLS 1.3 and protos, also
// through GetConfigForClient if the source uses it for rotation.
func withALPN(cfg *tls.Config, protos []string) *tls.Config {
	c := cfg.Clone()
	c.MinVersion = tls.VersionTLS13
	c.NextProtos = protos
	if inner := c.GetConfigForClient; inner != nil {
		c.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			ic, err := inner(h)
			if err != nil || ic == nil {
				return ic, err
			}
			ic = ic.Clone()
			ic.MinVersion = tls.VersionTLS13
			ic.NextProtos = protos
			return ic, nil
		}
	}
	return c
}

// allowHandshake admits any identity that some protocol on this port
// accepts; the per-protocol check happens once ALPN is known.
func (s *Server) allowHandshake(id identity.ID) error {
	if s.mayTunnel(id) || (s.o.H2 != nil && s.mayFeed(id)) {
		return nil
	}
	return fmt.Errorf("%w: %s", errForbiddenPeer, id)
}

func (s *Server) remote(id identity.ID) bool {
	return id.MeshDomain == s.o.Local.MeshDomain && id.Cluster != s.o.Local.Cluster
}

func (s *Server) mayTunnel(id identity.ID) bool {
	return s.remote(id) && id == contract.GatewayID(id.MeshDomain, id.Cluster)
}

func (s *Server) mayFeed(id identity.ID) bool {
	return s.remote(id) && id == contract.ControllerID(id.MeshDomain, id.Cluster)
}

// Serve accepts connections on ln until Shutdown or a listener error. It may
// be called for several listeners. The connections it accepts live in ctx:
// when ctx ends their handshakes, sessions and streams end. To drain, call
// Shutdown rather than ending ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		cancel()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.cancels = append(s.cancels, cancel)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isDraining() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("tunnel: accept: %w", err)
			}
			// EMFILE, ECONNABORTED and friends pass: back off rather than
			// stop serving or spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if s.conns.Add(1) > int64(s.o.Limits.MaxConnections) {
			s.conns.Add(-1)
			s.reject(c, ReasonConnectionLimit)
			continue
		}
		// The slot is freed when the socket is closed, by whoever closes
		// it: us, or the feed server for a handed-off h2 connection.
		cc := &countedConn{Conn: c}
		cc.onClose(func() { s.conns.Add(-1) })
		hs, evicted, reason := s.admit(cc, sourceKey(c.RemoteAddr()))
		if evicted != nil {
			s.reject(evicted.conn, ReasonHandshakeEvicted)
		}
		if hs == nil {
			s.reject(cc, reason)
			continue
		}
		go s.handleConn(ctx, hs)
	}
}

// sourceKey is the unit of MaxPendingHandshakesPerIP: the remote IP address,
// or its /64 for IPv6, where one host commonly holds a whole /64.
func sourceKey(a net.Addr) string {
	host := a.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		return netip.PrefixFrom(ip, 64).Masked().String()
	}
	return ip.String()
}

func (s *Server) reject(c net.Conn, reason string) {
	s.o.Observer.Rejected(reason)
	_ = c.Close()
}

func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

func (s *Server) handleConn(ctx context.Context, hs *pendingHS) {
	raw := hs.conn
	own := s.o.TLS.Certificate()
	tc, id, err := s.handshake(ctx, raw)
	if s.donePending(hs) {
		// Evicted: counted as such, and its slot was already given away.
		_ = raw.Close()
		return
	}
	if err != nil {
		reason := classifyHandshake(err)
		s.o.Observer.Rejected(reason)
		s.log.Debug("tls handshake refused", "remote_addr", raw.RemoteAddr().String(), "reason", reason, "err", err)
		_ = raw.Close()
		return
	}
	log := s.log.With("remote_addr", raw.RemoteAddr().String(), "peer", id.String())
	switch proto := tc.ConnectionState().NegotiatedProtocol; {
	case proto == ALPNTunnel && s.mayTunnel(id):
		s.serveTunnel(ctx, tc, own, id, log)
	case proto == ALPNH2 && s.o.H2 != nil && s.mayFeed(id):
		if !s.addH2(id) {
			s.o.Observer.Rejected(ReasonFeedCallerLimit)
			log.Warn("too many feed connections from caller", "limit", s.o.Limits.MaxH2ConnsPerCaller)
			_ = tc.Close()
			return
		}
		// The slot is freed when the conn is closed, by whoever closes it.
		raw.onClose(func() { s.doneH2(id) })
		gone := make(chan struct{})
		raw.onClose(func() { close(gone) })
		ctx, cancel := context.WithTimeout(ctx, s.o.Limits.HandshakeTimeout)
		defer cancel()
		guarded := &h2GuardConn{Conn: tc, scan: newH2Scanner(s.o.Limits, time.Now), onFlood: func(kind string) {
			s.o.Observer.Rejected(ReasonH2Flood)
			log.Warn("feed client flooded its connection; closed", "frames", kind, "window", H2GlitchWindow,
				"max_resets", s.o.Limits.MaxH2ResetsPerWindow, "max_settings", s.o.Limits.MaxH2SettingsPerWindow)
		}}
		if err := s.o.H2.Put(ctx, guarded); err != nil {
			s.o.Observer.Rejected(ReasonFeedUnavailable)
			log.Debug("feed connection refused", "err", err)
			_ = tc.Close()
			return
		}
		// The feed resumes from its last version on a new connection, so
		// retiring one means closing it.
		closeH2 := func() { _ = tc.Close() }
		go s.guard(tc, own, closeH2, closeH2, gone, log)
	case proto == ALPNTunnel || proto == ALPNH2:
		s.o.Observer.Rejected(ReasonForbiddenIdentity)
		log.Info("peer not allowed for protocol", "alpn", proto)
		_ = tc.Close()
	default:
		s.o.Observer.Rejected(ReasonProtocol)
		log.Debug("no usable ALPN protocol", "alpn", proto)
		_ = tc.Close()
	}
}

func (s *Server) addH2(id identity.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h2PerCaller[id] >= s.o.Limits.MaxH2ConnsPerCaller {
		return false
	}
	s.h2PerCaller[id]++
	return true
}

func (s *Server) doneH2(id identity.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h2PerCaller[id]--; s.h2PerCaller[id] <= 0 {
		delete(s.h2PerCaller, id)
	}
}

// handshake runs the TLS handshake under HandshakeTimeout. The deadline is
// on the socket as well as the context, so a peer that stalls mid-record
// cannot hold the goroutine. Until the ClientHello is read the socket
// deadline is the shorter ClientHelloTimeout, so a peer that connects and
// sends nothing frees its slot early; withHelloDeadline then extends it.
func (s *Server) handshake(ctx context.Context, raw *countedConn) (*tls.Conn, identity.ID, error) {
	if !s.trackPending(raw, true) {
		return nil, identity.ID{}, ErrServerClosed
	}
	defer s.trackPending(raw, false)
	now := time.Now()
	deadline := now.Add(s.o.Limits.HandshakeTimeout)
	// Read by GetConfigForClient, on this goroutine, inside HandshakeContext.
	raw.handshakeDeadline = deadline
	_ = raw.SetDeadline(now.Add(min(s.o.Limits.ClientHelloTimeout, s.o.Limits.HandshakeTimeout)))
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	tc := tls.Server(raw, s.tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, identity.ID{}, fmt.Errorf("tls handshake: %w", err)
	}
	_ = raw.SetDeadline(time.Time{})
	id, err := identity.PeerID(tc.ConnectionState())
	if err != nil {
		return nil, identity.ID{}, fmt.Errorf("%w: %w", errForbiddenPeer, err)
	}
	return tc, id, nil
}

func (s *Server) trackPending(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.pending, c)
		return true
	}
	if s.draining {
		return false
	}
	s.pending[c] = struct{}{}
	return true
}

func (s *Server) serveTunnel(ctx context.Context, tc *tls.Conn, own *tls.Certificate, id identity.ID, log *slog.Logger) {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		s.o.Observer.Rejected(ReasonDraining)
		_ = tc.Close()
		return
	}
	if s.perCaller[id] >= s.o.Limits.MaxSessionsPerCaller {
		s.mu.Unlock()
		s.o.Observer.Rejected(ReasonCallerLimit)
		log.Warn("too many tunnel sessions from caller", "limit", s.o.Limits.MaxSessionsPerCaller)
		_ = tc.Close()
		return
	}
	sess, err := yamux.Server(tc, s.o.Limits.yamuxConfig(s.o.Logger), s.budget.spans(id.String()))
	if err != nil {
		s.mu.Unlock()
		log.Error("yamux server", "err", err)
		_ = tc.Close()
		return
	}
	s.perCaller[id]++
	in := &inbound{sess: sess}
	s.sessions[sess] = in
	s.mu.Unlock()
	go s.guard(tc, own, in.retire, func() { _ = sess.Close() }, sess.CloseChan(), log)
	s.o.Observer.InboundSessions(id.Cluster, 1)
	log.Debug("tunnel session up")

	defer func() {
		_ = sess.Close()
		s.mu.Lock()
		delete(s.sessions, sess)
		if s.perCaller[id]--; s.perCaller[id] <= 0 {
			delete(s.perCaller, id)
		}
		s.mu.Unlock()
		s.o.Observer.InboundSessions(id.Cluster, -1)
		log.Debug("tunnel session down")
	}()
	s.serveSession(ctx, in, id, log)
}

func (s *Server) serveSession(ctx context.Context, in *inbound, id identity.ID, log *slog.Logger) {
	sess := in.sess
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Handlers see the session's end as their context's: a closing session
	// resets its streams, and the handler should stop dialing for them.
	go func() {
		select {
		case <-sess.CloseChan():
		case <-ctx.Done():
		}
		cancel()
	}()
	key := id.String()
	max := int64(s.o.Limits.MaxStreamsPerSession)
	for {
		ys, err := sess.AcceptStream()
		if err != nil {
			return
		}
		st := &Stream{Stream: ys}
		if in.retiring.Load() {
			s.o.Observer.Rejected(ReasonDraining)
			go refuse(st, StatusDraining, "this connection is retiring; open a new one")
			continue
		}
		if in.active.Load() >= max {
			s.o.Observer.Rejected(ReasonStreamLimit)
			go refuse(st, StatusOverloaded, "too many streams on this connection")
			continue
		}
		if !s.chargeStream(key, st) {
			continue
		}
		if !s.streams.add() {
			s.budget.discharge(key)
			s.o.Observer.Rejected(ReasonDraining)
			go refuse(st, StatusDraining, "gateway is draining")
			continue
		}
		in.active.Add(1)
		go func() {
			defer s.streams.done()
			defer s.budget.discharge(key)
			defer in.streamDone()
			defer st.Close()
			s.o.Handler.ServeStream(ctx, id, st)
		}()
	}
}

// classifyHandshake maps a failed handshake to a bounded reason label.
func classifyHandshake(err error) string {
	switch {
	case errors.Is(err, errForbiddenPeer):
		return ReasonForbiddenIdentity
	case isTimeout(err), errors.Is(err, context.DeadlineExceeded):
		return ReasonHandshakeTimeout
	case errors.Is(err, identity.ErrNoCertificate),
		// crypto/tls has no sentinel for this; the message is stable API
		// in practice and only picks the label, never a decision.
		strings.Contains(err.Error(), "didn't provide a certificate"):
		return ReasonNoClientCert
	case errors.Is(err, identity.ErrUnknownAuthority), errors.Is(err, identity.ErrTrustDomainNotPermitted),
		errors.Is(err, identity.ErrExpired), errors.Is(err, identity.ErrNotYetValid),
		errors.Is(err, identity.ErrSelfSigned), errors.Is(err, identity.ErrInvalidChain),
		errors.Is(err, identity.ErrWrongMesh), errors.Is(err, identity.ErrRevoked):
		return ReasonUntrustedPeer
	}
	return ReasonHandshake
}

// refuse answers a stream that will not be served. The write is bounded so a
// peer that never reads cannot hold the goroutine.
func refuse(st *Stream, status Status, reason string) {
	_ = st.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = WriteReply(st, status, reason)
	_ = st.Close()
}

// ActiveStreams is the number of streams being served.
func (s *Server) ActiveStreams() int { return s.streams.count() }

// Shutdown drains the server: it stops accepting connections, answers
// every new stream StatusDraining (so egress moves it, and the streams after
// it, to another replica), waits for running streams to finish until ctx
// ends, and then closes everything. It returns ctx's error if
// streams had to be cut.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for c := range s.pending {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.streams.close()
	err := s.streams.wait(ctx)
	s.mu.Lock()
	for _, cancel := range s.cancels {
		cancel()
	}
	for sess := range s.sessions {
		_ = sess.Close()
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("tunnel: drain cut short: %w", err)
	}
	return nil
}
