package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrIdleTimeout ends a splice in which no byte moved in either direction for
// the idle timeout.
var ErrIdleTimeout = errors.New("tunnel: idle timeout")

// Conn is what Splice needs from each side: a net.Conn that can half-close.
// *net.TCPConn and the tunnel's own streams satisfy it.
type Conn interface {
	net.Conn
	// CloseWrite sends FIN (no more bytes from us) while reads continue.
	CloseWrite() error
}

// SpliceOptions tunes one splice.
type SpliceOptions struct {
	// IdleTimeout ends the splice when no byte moved either way for this
	// long, and bounds how long one write may stall on a peer that does not
	// read. Zero disables both.
	IdleTimeout time.Duration
	// AToB and BToA, when set, are told about every chunk as it is written, so
	// byte counters move while long streams run rather than when they end.
	AToB, BToA func(n int)
	// FirstByteBToA, when set, is called once, when the first byte from b is
	// read: ingress uses it for backend time to first byte.
	FirstByteBToA func()
}

// Small buffers first: most proxied connections are idle or chatty, and a
// gateway may hold tens of thousands of them, so a direction only gets a
// large buffer once a read fills the small one.
const (
	smallBuf = 2 << 10
	largeBuf = 32 << 10
)

var (
	smallPool = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}
	largePool = sync.Pool{New: func() any { b := make([]byte, largeBuf); return &b }}
)

// Splice copies a→b and b→a until both directions have ended, preserving
// half-close: EOF from one side becomes CloseWrite on the other, and the other
// direction keeps flowing. Any other error, the idle timeout, or the end of
// ctx (session lost, drain deadline) aborts both directions. Both conns are
// closed when Splice returns. It returns the bytes written in each direction
// and the errors (nil if both directions ended in EOF).
func Splice(ctx context.Context, a, b Conn, o SpliceOptions) (aToB, bToA int64, err error) {
	s := &splice{idle: o.IdleTimeout}
	s.touch()
	var wg sync.WaitGroup
	var errAB, errBA error
	var once sync.Once
	closeBoth := func(reset bool) {
		once.Do(func() {
			if reset {
				// A TCP peer should see an abort as a reset, not as a clean
				// FIN that would pass a truncated response off as complete.
				resetOnClose(a)
				resetOnClose(b)
			}
			// Closing both unblocks the other direction's Read or Write.
			_ = a.Close()
			_ = b.Close()
		})
	}
	abort := func() { closeBoth(true) }
	ctxDone := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		abort()
		close(ctxDone)
	})
	defer stop()
	wg.Add(1)
	go func() {
		defer wg.Done()
		aToB, errAB = s.copy(b, a, o.AToB, nil)
		if errAB != nil {
			abort()
		}
	}()
	bToA, errBA = s.copy(a, b, o.BToA, o.FirstByteBToA)
	if errBA != nil {
		abort()
	}
	wg.Wait()
	if !stop() {
		<-ctxDone // the abort ran or is running; let it finish
		return aToB, bToA, errors.Join(ctx.Err(), errAB, errBA)
	}
	closeBoth(false)
	return aToB, bToA, errors.Join(errAB, errBA)
}

type splice struct {
	idle time.Duration
	last atomic.Int64 // unix nanos of the last byte moved either way
}

func (s *splice) touch() { s.last.Store(time.Now().UnixNano()) }

func (s *splice) idleFor(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, s.last.Load()))
}

// copy moves src→dst until EOF (then half-closes dst) or an error.
func (s *splice) copy(dst, src Conn, count func(int), first func()) (int64, error) {
	bufp := smallPool.Get().(*[]byte)
	large := false
	defer func() {
		if large {
			largePool.Put(bufp)
		} else {
			smallPool.Put(bufp)
		}
	}()
	var total int64
	// Deadlines are refreshed at most every idle/4 instead of on every call:
	// arming a timer per read costs more than the copy of a small chunk.
	var readArmed, writeArmed time.Time
	for {
		if s.idle > 0 {
			if now := time.Now(); now.Sub(readArmed) > s.idle/4 {
				readArmed = now
				if err := src.SetReadDeadline(now.Add(s.idle)); err != nil {
					return total, fmt.Errorf("arm read deadline: %w", err)
				}
			}
		}
		buf := *bufp
		n, rerr := src.Read(buf)
		if n > 0 {
			if first != nil {
				first()
				first = nil
			}
			s.touch()
			if s.idle > 0 {
				if now := time.Now(); now.Sub(writeArmed) > s.idle/4 {
					writeArmed = now
					if err := dst.SetWriteDeadline(now.Add(s.idle)); err != nil {
						return total, fmt.Errorf("arm write deadline: %w", err)
					}
				}
			}
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if w > 0 && count != nil {
				count(w)
			}
			if werr != nil {
				if isTimeout(werr) {
					return total, fmt.Errorf("%w: write stalled", ErrIdleTimeout)
				}
				return total, fmt.Errorf("write: %w", werr)
			}
			if n == len(buf) && !large {
				smallPool.Put(bufp)
				bufp = largePool.Get().(*[]byte)
				large = true
			}
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF):
			if err := dst.CloseWrite(); err != nil {
				return total, fmt.Errorf("half-close: %w", err)
			}
			return total, nil
		case isTimeout(rerr) && s.idle > 0:
			now := time.Now()
			if s.idleFor(now) < s.idle {
				// The other direction is busy; this one is just quiet.
				readArmed = time.Time{}
				continue
			}
			return total, ErrIdleTimeout
		default:
			return total, fmt.Errorf("read: %w", rerr)
		}
	}
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func resetOnClose(c net.Conn) {
	if l, ok := c.(interface{ SetLinger(int) error }); ok {
		_ = l.SetLinger(0)
	}
}
