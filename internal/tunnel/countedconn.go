package tunnel

import (
	"net"
	"sync"
	"time"
)

// countedConn frees its slots (MaxConnections, and MaxH2ConnsPerCaller for a
// feed conn) exactly once, on the first Close.
type countedConn struct {
	net.Conn
	// handshakeDeadline is the overall handshake deadline, restored once the
	// ClientHello is read (withHelloDeadline).
	handshakeDeadline time.Time

	mu       sync.Mutex
	closed   bool
	releases []func()
}

// onClose registers f to run on the first Close; at once if already closed.
func (c *countedConn) onClose(f func()) {
	c.mu.Lock()
	if !c.closed {
		c.releases = append(c.releases, f)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	f()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	fs := c.releases
	c.releases, c.closed = nil, true
	c.mu.Unlock()
	for _, f := range fs {
		f()
	}
	return err
}
