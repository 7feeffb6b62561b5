package tunnel

import (
	"context"
	"errors"
	"net"
	"sync"
)

// ErrListenerClosed is returned by ConnListener.Put after Close.
var ErrListenerClosed = errors.New("tunnel: conn listener closed")

// ConnListener is a net.Listener whose connections are handed to it by the
// ingress server instead of accepted from a socket. Ingress puts the
// connections that negotiated ALPN "h2" here, already TLS-terminated and
// verified, so a gRPC server (the export feed) can Serve on the same port as
// the tunnel. Every conn is a *tls.Conn whose handshake is complete and whose
// peer is a remote controller: serve them with transport credentials that do
// not handshake again (feed.ServerCredentials), and take the peer with
// identity.PeerID(conn.ConnectionState()). Closing a conn frees its slot in
// the server's MaxConnections.
type ConnListener struct {
	addr    net.Addr
	conns   chan net.Conn
	done    chan struct{}
	closeMu sync.Once
}

// NewConnListener returns a listener that reports addr and queues at most
// backlog connections that were put but not yet accepted.
func NewConnListener(addr net.Addr, backlog int) *ConnListener {
	if backlog <= 0 {
		backlog = 16
	}
	return &ConnListener{addr: addr, conns: make(chan net.Conn, backlog), done: make(chan struct{})}
}

// Put hands c to the next Accept. It waits while the backlog is full, until
// ctx ends; on any error the caller still owns c and must close it.
func (l *ConnListener) Put(ctx context.Context, c net.Conn) error {
	select {
	case <-l.done:
		return ErrListenerClosed
	default:
	}
	select {
	case l.conns <- c:
		// Close may have drained the queue just before this send; if so,
		// nobody will Accept, so drain again rather than leak a conn.
		select {
		case <-l.done:
			l.drain()
		default:
		}
		return nil
	case <-l.done:
		return ErrListenerClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Accept implements net.Listener.
func (l *ConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener. Queued, never-accepted conns are closed.
func (l *ConnListener) Close() error {
	l.closeMu.Do(func() {
		close(l.done)
		l.drain()
	})
	return nil
}

func (l *ConnListener) drain() {
	for {
		select {
		case c := <-l.conns:
			_ = c.Close()
		default:
			return
		}
	}
}

// Addr implements net.Listener.
func (l *ConnListener) Addr() net.Addr {
	if l.addr == nil {
		return &net.TCPAddr{}
	}
	return l.addr
}
