package benchpeer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// A WAN between the two gateways (or the two HAProxy instances), in user
// space: tc netem is not available here.
const (
	// relayChunk is the most one read takes from a sender.
	relayChunk = 64 << 10
	// relayInFlight bounds the bytes held per direction. Past it the relay
	// stops reading, and TCP backpressure reaches the sender. A byte is held
	// for half the round trip, and TCP's acknowledgements to the sender are
	// local, so this is half the window of the TCP connection it stands
	// for: 2 MiB is a kernel connection whose window reached 4 MiB, about
	// what Linux's default maximum receive buffer (tcp_rmem, 6 MiB) leaves
	// for data. A muxer's own windows travel through the relay and feel the
	// whole round trip.
	relayInFlight = 2 << 20
	// relayTargetWait bounds how long an accepted connection waits for the
	// relay's target to be set.
	relayTargetWait = 30 * time.Second
)

// delayRelay forwards each connection to its target and holds every byte
// for half the round trip in each direction, preserving half-close.
type delayRelay struct {
	ln  net.Listener
	rtt time.Duration
	// to is where connections go; target is closed once it is set.
	to     string
	target chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

// startRelay listens on loopback; setTarget names where connections go.
func startRelay(rtt time.Duration) (*delayRelay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("benchpeer: relay: %w", err)
	}
	r := &delayRelay{ln: ln, rtt: rtt, target: make(chan struct{})}
	r.wg.Add(1)
	go r.serve()
	return r, nil
}

func (r *delayRelay) addr() string { return r.ln.Addr().String() }

func (r *delayRelay) setTarget(addr string) {
	r.once.Do(func() {
		r.to = addr
		close(r.target)
	})
}

func (r *delayRelay) close() {
	_ = r.ln.Close()
	r.wg.Wait()
}

func (r *delayRelay) serve() {
	defer r.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() { defer conns.Done(); r.relay(c.(*net.TCPConn)) }()
	}
}

func (r *delayRelay) relay(a *net.TCPConn) {
	defer a.Close()
	select {
	case <-r.target:
	case <-time.After(relayTargetWait):
		return
	}
	bc, err := net.DialTimeout("tcp", r.to, dialTimeout)
	if err != nil {
		return
	}
	b := bc.(*net.TCPConn)
	defer b.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.pipe(b, a) }()
	go func() { defer wg.Done(); r.pipe(a, b) }()
	wg.Wait()
}

// pipe copies src to dst, each chunk released half a round trip after it
// was read.
func (r *delayRelay) pipe(dst, src *net.TCPConn) {
	type chunk struct {
		due time.Time
		b   []byte
	}
	q := make(chan chunk, relayInFlight/relayChunk)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, relayChunk)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{time.Now().Add(r.rtt / 2), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.b); err != nil {
			_ = src.Close() // unblock the reader; the conn is done
			for range q {
			}
			return
		}
	}
	// EOF (or an error) from src: pass the half-close on.
	if err := dst.CloseWrite(); err != nil && !errors.Is(err, net.ErrClosed) {
		_ = dst.Close()
	}
}

// measureWAN runs, at each round trip, WANBytes each way on one stream and
// then the same bytes spread over WANStreams streams at once.
func measureWAN(ctx context.Context, cfg Config, t target) ([]measurement, error) {
	var out []measurement
	mb := float64(cfg.WANBytes) / 1e6
	for i, rtt := range cfg.WANRTTs {
		at := fmt.Sprintf("%d ms", rtt.Milliseconds())
		r, err := runStream(ctx, t.wan[i], cfg.WANBytes, cfg.IOTimeout)
		if err != nil {
			return nil, fmt.Errorf("%s, one stream: %w", at, err)
		}
		out = append(out,
			measurement{at + ", 1 stream up", "MB/s", true, mb / r.up.Seconds()},
			measurement{at + ", 1 stream down", "MB/s", true, mb / r.down.Seconds()})
		up, down, err := runStreams(ctx, t.wan[i], cfg.WANStreams, cfg.WANBytes/int64(cfg.WANStreams), cfg.IOTimeout)
		if err != nil {
			return nil, fmt.Errorf("%s, %d streams: %w", at, cfg.WANStreams, err)
		}
		n := fmt.Sprintf("%s, %d streams", at, cfg.WANStreams)
		out = append(out,
			measurement{n + " up", "MB/s", true, mb / up.Seconds()},
			measurement{n + " down", "MB/s", true, mb / down.Seconds()})
	}
	return out, nil
}

// runStreams runs n streams of each bytes at once; up and down are the
// slowest stream's times.
func runStreams(ctx context.Context, addr string, n int, each int64, idle time.Duration) (up, down time.Duration, err error) {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := runStream(ctx, addr, each, idle)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			up, down = max(up, r.up), max(down, r.down)
		}()
	}
	wg.Wait()
	return up, down, errors.Join(errs...)
}
