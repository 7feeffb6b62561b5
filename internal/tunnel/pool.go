package tunnel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-yamux/v5"

	"ferry.dev/ferry/internal/identity"
)

// pool is the set of sessions to one remote cluster, kept at PoolSize by
// its maintain goroutine.
type pool struct {
	c      *Client
	name   string
	remote Remote
	log    *slog.Logger

	mu       sync.Mutex
	sessions []*clientSession
	changed  chan struct{} // closed and replaced when sessions change
	stopped  bool
	stop     chan struct{}
	wake     chan struct{}
	nextAddr int
	lastUp   int // last reported live count, -1 before the first report
	// down is set when a dial fails while no session is live, and cleared
	// by the next session: until then new streams fail at once rather
	// than wait for a dial that is likely to fail again.
	down bool
}

func newPool(c *Client, name string, r Remote) *pool {
	return &pool{
		c: c, name: name, remote: r,
		log:     c.log.With("remote", name),
		changed: make(chan struct{}),
		stop:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		lastUp:  -1,
	}
}

type clientSession struct {
	p       *pool
	sess    *yamux.Session
	addr    string
	streams int // guarded by p.mu
	leaving bool
}

func (p *pool) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
	p.reportLocked()
}

// reportLocked publishes the live session count. A retired pool stays
// quiet: its name may already belong to its replacement.
func (p *pool) reportLocked() {
	if p.stopped {
		return
	}
	live := 0
	for _, s := range p.sessions {
		if !s.leaving {
			live++
		}
	}
	if live != p.lastUp {
		p.c.o.Observer.Sessions(p.name, live)
		if (live > 0) != (p.lastUp > 0) || p.lastUp < 0 {
			p.c.o.Observer.RemoteUp(p.name, live > 0)
		}
		p.lastUp = live
	}
}

func (p *pool) liveCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.sessions {
		if !s.leaving && !s.sess.IsClosed() {
			n++
		}
	}
	return n
}

// pick returns the least-loaded usable session and reserves a stream slot
// on it, waiting for one to come up if none is live yet.
func (p *pool) pick(ctx context.Context) (*clientSession, error) {
	max := p.c.o.Limits.MaxStreamsPerSession
	for {
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return nil, fmt.Errorf("%w: %q", ErrUnknownRemote, p.name)
		}
		var best *clientSession
		live := 0
		for _, s := range p.sessions {
			if s.leaving || s.sess.IsClosed() {
				continue
			}
			live++
			if s.streams < max && (best == nil || s.streams < best.streams) {
				best = s
			}
		}
		if best != nil {
			best.streams++
			p.mu.Unlock()
			return best, nil
		}
		changed, down := p.changed, p.down
		p.mu.Unlock()
		if live > 0 {
			return nil, fmt.Errorf("%w: %q", ErrPoolExhausted, p.name)
		}
		if down {
			return nil, fmt.Errorf("%w: %q", ErrRemoteDown, p.name)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("tunnel: no live session to %q: %w", p.name, ctx.Err())
		}
	}
}

// release returns a stream slot; a leaving session closes with its last
// stream.
func (cs *clientSession) release(st *Stream) {
	p := cs.p
	p.mu.Lock()
	cs.streams--
	closeNow := cs.leaving && cs.streams == 0
	p.mu.Unlock()
	if closeNow {
		_ = cs.sess.Close()
	}
}

// markLeaving stops new streams on cs, asks the maintainer for a
// replacement and closes cs once idle.
func (cs *clientSession) markLeaving() {
	p := cs.p
	p.mu.Lock()
	if cs.leaving {
		p.mu.Unlock()
		return
	}
	cs.leaving = true
	idle := cs.streams == 0
	p.notifyLocked()
	p.mu.Unlock()
	if idle {
		_ = cs.sess.Close()
	}
	p.poke()
}

func (p *pool) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// open runs the stream handshake on cs: open, header, reply. The caller
// already reserved a slot on cs.
func (cs *clientSession) open(ctx context.Context, t Target) (*Stream, error) {
	ys, err := cs.sess.OpenStream(ctx)
	if err != nil {
		cs.release(nil)
		if errors.Is(err, yamux.ErrRemoteGoAway) || errors.Is(err, yamux.ErrSessionShutdown) {
			cs.markLeaving()
		}
		return nil, fmt.Errorf("tunnel: open stream to %s: %w", cs.addr, err)
	}
	st := &Stream{Stream: ys}
	st.onClose = func() { cs.release(st) }
	if d, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = st.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := WriteHeader(st, t); err != nil {
		_ = st.Close()
		return nil, err
	}
	if err := ReadReply(st); err != nil {
		_ = st.Close()
		var re *RejectError
		if errors.As(err, &re) && re.Status == StatusDraining {
			// This session is retiring, or its gateway is draining: the
			// streams after this one go elsewhere.
			cs.markLeaving()
		}
		return nil, err
	}
	if !stop() {
		_ = st.Close()
		return nil, fmt.Errorf("tunnel: open stream: %w", ctx.Err())
	}
	_ = st.SetDeadline(time.Time{})
	return st, nil
}

// maintain keeps PoolSize live sessions, redialing with backoff.
func (p *pool) maintain() {
	backoff := 100 * time.Millisecond
	for {
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		live := 0
		for _, s := range p.sessions {
			if !s.leaving {
				live++
			}
		}
		need := live < p.c.o.PoolSize
		p.mu.Unlock()
		if !need {
			select {
			case <-p.wake:
				continue
			case <-p.stop:
				return
			}
		}
		if err := p.dialOne(); err != nil {
			p.mu.Lock()
			if !p.down && !slices.ContainsFunc(p.sessions, func(s *clientSession) bool { return !s.leaving }) {
				p.down = true
				p.notifyLocked()
			}
			p.mu.Unlock()
			p.log.Warn("tunnel dial failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-p.stop:
				return
			}
			backoff = min(2*backoff, p.c.o.MaxBackoff)
			continue
		}
		backoff = 100 * time.Millisecond
	}
}

// dialOne connects one session, trying each address once starting from a
// rotating offset so the pool spreads over the remote's addresses.
func (p *pool) dialOne() error {
	addrs := p.remote.Addresses
	if len(addrs) == 0 {
		return errors.New("remote has no addresses")
	}
	p.mu.Lock()
	start := p.nextAddr
	p.nextAddr++
	p.mu.Unlock()
	var errs []error
	for i := range addrs {
		addr := addrs[(start+i)%len(addrs)]
		own := p.c.o.TLS.Certificate()
		sess, chain, err := p.dial(addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		cs := &clientSession{p: p, sess: sess, addr: addr}
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			_ = sess.Close()
			return nil
		}
		p.sessions = append(p.sessions, cs)
		p.down = false
		p.notifyLocked()
		p.mu.Unlock()
		p.log.Debug("tunnel session up", "addr", addr)
		go p.watch(cs)
		go guard{
			lt: p.c.o.Limits.Lifetime, trust: p.c.o.TLS, role: identity.PeerServer, chain: chain, own: own,
			retire: cs.markLeaving,
			cut:    func(string) { _ = sess.Close() },
			done:   sess.CloseChan(),
			log:    p.log.With("addr", addr),
		}.run()
		return nil
	}
	return errors.Join(errs...)
}

// watch removes cs from the pool when its session ends (peer gone,
// keepalive timeout, or closed by us) and asks for a replacement.
func (p *pool) watch(cs *clientSession) {
	<-cs.sess.CloseChan()
	p.mu.Lock()
	p.sessions = slices.DeleteFunc(p.sessions, func(s *clientSession) bool { return s == cs })
	p.notifyLocked()
	leaving := cs.leaving
	p.mu.Unlock()
	if !leaving {
		p.log.Info("tunnel session lost", "addr", cs.addr)
	}
	p.poke()
}

// dial returns a live session to addr and the chain the remote presented.
func (p *pool) dial(addr string) (*yamux.Session, []*x509.Certificate, error) {
	o := &p.c.o
	ctx, cancel := context.WithTimeout(context.Background(), o.DialTimeout)
	raw, err := o.Dialer.DialContext(ctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	cfg := o.TLS.ClientTLSConfig(p.remote.Identity).Clone()
	cfg.MinVersion = tls.VersionTLS13
	cfg.NextProtos = []string{ALPNTunnel}
	tc := tls.Client(raw, cfg)
	deadline := time.Now().Add(o.Limits.HandshakeTimeout)
	_ = raw.SetDeadline(deadline)
	ctx, cancel = context.WithDeadline(context.Background(), deadline)
	err = tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		_ = raw.Close()
		return nil, nil, fmt.Errorf("tls handshake: %w", err)
	}
	cs := tc.ConnectionState()
	if cs.NegotiatedProtocol != ALPNTunnel {
		_ = tc.Close()
		return nil, nil, fmt.Errorf("remote did not negotiate %s", ALPNTunnel)
	}
	// The TLS config already enforced this; checking again keeps the
	// guarantee local to this file should the source ever change.
	if id, err := identity.PeerID(cs); err != nil || id != p.remote.Identity {
		_ = tc.Close()
		return nil, nil, fmt.Errorf("remote identity: got %v (%w), want %s", id, err, p.remote.Identity)
	}
	sess, err := yamux.Client(tc, o.Limits.yamuxConfig(o.Logger), p.c.budget.spans(p.name))
	if err != nil {
		_ = tc.Close()
		return nil, nil, fmt.Errorf("yamux client: %w", err)
	}
	// In TLS 1.3 the server checks our certificate after our side of the
	// handshake is done; a ping proves it accepted us before the session
	// counts as live.
	if _, err := sess.Ping(); err != nil {
		_ = sess.Close()
		return nil, nil, fmt.Errorf("first ping: %w", err)
	}
	_ = raw.SetDeadline(time.Time{})
	return sess, cs.PeerCertificates, nil
}

// retire stops maintenance and drains the sessions: no new streams, close
// each when its last stream ends.
func (p *pool) retire() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	close(p.stop)
	sessions := slices.Clone(p.sessions)
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	for _, cs := range sessions {
		cs.markLeaving()
	}
}

// shutdown closes every session now.
func (p *pool) shutdown() {
	p.retire()
	p.mu.Lock()
	sessions := slices.Clone(p.sessions)
	p.mu.Unlock()
	for _, cs := range sessions {
		_ = cs.sess.Close()
	}
}
