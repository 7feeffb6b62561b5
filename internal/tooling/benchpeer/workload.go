package benchpeer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// dialTimeout bounds one client connect on loopback; anything slower is a
// broken path, not a measurement.
const dialTimeout = 5 * time.Second

func dial(ctx context.Context, addr string, idle time.Duration) (deadlineConn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return deadlineConn{}, fmt.Errorf("dial %s: %w", addr, err)
	}
	return deadlineConn{Conn: c, idle: idle}, nil
}

// streamResult is one run of the stream workload.
type streamResult struct {
	up, down time.Duration
}

// runStream sends n bytes to the backend on one connection, waits for its
// ack (so "up" ends when the last byte arrived, not when it was buffered),
// then reads n bytes back ("down").
func runStream(ctx context.Context, addr string, n int64, idle time.Duration) (streamResult, error) {
	c, err := dial(ctx, addr, idle)
	if err != nil {
		return streamResult{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	hdr := make([]byte, 9)
	hdr[0] = modeStream
	binary.BigEndian.PutUint64(hdr[1:], uint64(n))
	buf := make([]byte, copyBuf)
	start := time.Now()
	if _, err := c.Write(hdr); err != nil {
		return streamResult{}, fmt.Errorf("stream header: %w", err)
	}
	for left := n; left > 0; {
		w, err := c.Write(buf[:min(left, int64(len(buf)))])
		if err != nil {
			return streamResult{}, fmt.Errorf("stream up after %d bytes: %w", n-left, err)
		}
		left -= int64(w)
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return streamResult{}, fmt.Errorf("stream ack: %w", err)
	}
	mid := time.Now()
	got, err := io.CopyBuffer(io.Discard, io.LimitReader(c, n), buf)
	if err != nil {
		return streamResult{}, fmt.Errorf("stream down after %d bytes: %w", got, err)
	}
	if got != n {
		return streamResult{}, fmt.Errorf("stream down: got %d of %d bytes", got, n)
	}
	return streamResult{up: mid.Sub(start), down: time.Since(mid)}, nil
}

// runConnRate makes count sequential new connections; each sends the echo
// mode byte with a msg-byte request in one write, reads the msg-byte echo
// and closes. The latency of each is dial start to the last response byte,
// which for a proxy includes its accept, its own upstream connect (or
// stream open) and the backend connect.
func runConnRate(ctx context.Context, addr string, count, msg int, idle time.Duration) ([]time.Duration, time.Duration, error) {
	req := echoRequest(msg, true)
	resp := make([]byte, msg)
	lat := make([]time.Duration, 0, count)
	start := time.Now()
	for i := range count {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		t0 := time.Now()
		c, err := dial(ctx, addr, idle)
		if err != nil {
			return nil, 0, fmt.Errorf("connection %d: %w", i, err)
		}
		if _, err := c.Write(req); err != nil {
			c.Close()
			return nil, 0, fmt.Errorf("connection %d: write: %w", i, err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			c.Close()
			return nil, 0, fmt.Errorf("connection %d: read: %w", i, err)
		}
		lat = append(lat, time.Since(t0))
		c.Close()
		if !bytes.Equal(resp, req[1:]) {
			return nil, 0, fmt.Errorf("connection %d: echo differs from request", i)
		}
	}
	return lat, time.Since(start), nil
}

// runParallel opens conns persistent connections (not timed; each does one
// warm-up echo so every proxy has finished its connect), then lets them
// share total requests of msg bytes each, one outstanding per connection.
func runParallel(ctx context.Context, addr string, conns, total, msg int, idle time.Duration) ([]time.Duration, time.Duration, error) {
	cs := make([]deadlineConn, 0, conns)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	req := echoRequest(msg, false)
	first := echoRequest(msg, true)
	for i := range conns {
		c, err := dial(ctx, addr, idle)
		if err != nil {
			return nil, 0, fmt.Errorf("parallel connection %d: %w", i, err)
		}
		cs = append(cs, c)
		if err := echoOnce(c, first, make([]byte, msg)); err != nil {
			return nil, 0, fmt.Errorf("parallel connection %d warm-up: %w", i, err)
		}
	}
	stop := context.AfterFunc(ctx, func() {
		for _, c := range cs {
			c.Close()
		}
	})
	defer stop()

	var left atomic.Int64
	left.Store(int64(total))
	lats := make([][]time.Duration, conns)
	errs := make([]error, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := make([]byte, msg)
			own := make([]time.Duration, 0, total/conns+1)
			for left.Add(-1) >= 0 {
				t0 := time.Now()
				if err := echoOnce(c, req, resp); err != nil {
					errs[i] = err
					left.Store(0) // stop the others: the run is void
					return
				}
				own = append(own, time.Since(t0))
			}
			lats[i] = own
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return nil, 0, fmt.Errorf("parallel: %w", err)
	}
	all := make([]time.Duration, 0, total)
	for _, l := range lats {
		all = append(all, l...)
	}
	return all, elapsed, nil
}

// echoRequest is msg bytes of a recognizable pattern, preceded by the echo
// mode byte when it opens a connection.
func echoRequest(msg int, withMode bool) []byte {
	b := make([]byte, 0, msg+1)
	if withMode {
		b = append(b, modeEcho)
	}
	for i := range msg {
		b = append(b, byte('a'+i%26))
	}
	return b
}

func echoOnce(c deadlineConn, req, resp []byte) error {
	if _, err := c.Write(req); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if _, err := io.ReadFull(c, resp); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return nil
}
