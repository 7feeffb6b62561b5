package benchpeer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Backend protocol. The first byte a client sends picks the mode, so one
// listener serves every workload and every path reaches the same server.
const (
	// modeStream: an 8-byte big-endian count N follows. The backend reads
	// exactly N bytes, answers one ack byte, then writes N bytes and waits
	// for the client to close.
	modeStream = 'S'
	// modeEcho: every byte after the mode byte is echoed until EOF.
	modeEcho = 'E'
	// modeIdle: as modeEcho, but the connection may stay silent for the
	// whole run without tripping the idle deadline: the idle workload holds
	// thousands open on purpose. The backend closes them when it closes.
	modeIdle = 'I'
)

// copyBuf is the write and read size of the stream workload: the same
// 64 KiB as internal/gateway's BenchmarkThroughput, so figures line up.
const copyBuf = 64 << 10

// backend is the echo/sink server behind every path, on 127.0.0.1.
type backend struct {
	ln    net.Listener
	idle  time.Duration
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	errMu sync.Mutex
	err   error // first protocol error, for the report
}

// newBackend listens on an ephemeral loopback port. idle bounds how long a
// connection may sit without traffic, so a stuck proxy cannot hang the run.
func newBackend(idle time.Duration) (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("benchpeer: backend listen: %w", err)
	}
	b := &backend{ln: ln, idle: idle, conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go b.accept()
	return b, nil
}

func (b *backend) addr() string { return b.ln.Addr().String() }

func (b *backend) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer func() {
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
				c.Close()
			}()
			if err := b.serve(c); err != nil {
				b.fail(err)
			}
		}()
	}
}

func (b *backend) fail(err error) {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	if b.err == nil {
		b.err = err
	}
}

// firstErr is the first protocol error any connection hit, or nil. A proxy
// that corrupts or truncates data shows up here as well as on the client.
func (b *backend) firstErr() error {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	return b.err
}

func (b *backend) serve(c net.Conn) error {
	dc := deadlineConn{Conn: c, idle: b.idle}
	var mode [1]byte
	if _, err := io.ReadFull(dc, mode[:]); err != nil {
		// Readiness probes and warm-up dials connect and close at once.
		return nil
	}
	switch mode[0] {
	case modeEcho:
		return echoLoop(dc)
	case modeIdle:
		// Clear the deadline the mode byte's read set.
		if err := c.SetDeadline(time.Time{}); err != nil {
			return fmt.Errorf("benchpeer: backend: %w", err)
		}
		return echoLoop(deadlineConn{Conn: c})
	case modeStream:
		return streamBoth(dc)
	default:
		return fmt.Errorf("benchpeer: backend: unknown mode %q", mode[0])
	}
}

func echoLoop(c deadlineConn) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return fmt.Errorf("benchpeer: backend echo write: %w", werr)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("benchpeer: backend echo read: %w", err)
		}
	}
}

func streamBoth(c deadlineConn) error {
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fmt.Errorf("benchpeer: backend stream header: %w", err)
	}
	n := int64(binary.BigEndian.Uint64(hdr[:]))
	buf := make([]byte, copyBuf)
	got, err := io.CopyBuffer(io.Discard, io.LimitReader(c, n), buf)
	if err != nil {
		return fmt.Errorf("benchpeer: backend stream read: %w", err)
	}
	if got != n {
		return fmt.Errorf("benchpeer: backend stream: got %d of %d bytes", got, n)
	}
	if _, err := c.Write([]byte{1}); err != nil {
		return fmt.Errorf("benchpeer: backend stream ack: %w", err)
	}
	for left := n; left > 0; {
		chunk := buf[:min(left, int64(len(buf)))]
		w, err := c.Write(chunk)
		if err != nil {
			return fmt.Errorf("benchpeer: backend stream write: %w", err)
		}
		left -= int64(w)
	}
	// Wait for the client's close so the last bytes are not cut by an RST
	// from a close with unread data.
	_, _ = io.Copy(io.Discard, c)
	return nil
}

// close stops accepting, cuts open connections and waits for handlers.
func (b *backend) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// deadlineConn pushes an idle deadline forward on every read and write, so
// no I/O in the harness can block for longer than idle. Zero idle sets no
// deadline (modeIdle).
type deadlineConn struct {
	net.Conn
	idle time.Duration
}

func (d deadlineConn) Read(p []byte) (int, error) {
	if d.idle > 0 {
		if err := d.Conn.SetReadDeadline(time.Now().Add(d.idle)); err != nil {
			return 0, err
		}
	}
	return d.Conn.Read(p)
}

func (d deadlineConn) Write(p []byte) (int, error) {
	if d.idle > 0 {
		if err := d.Conn.SetWriteDeadline(time.Now().Add(d.idle)); err != nil {
			return 0, err
		}
	}
	return d.Conn.Write(p)
}
