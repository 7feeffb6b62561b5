package chaos

import (
	"bufio"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"ferry.dev/ferry/internal/contract"
)

// RequestTimeout bounds one request of the scenarios' traffic; one that
// takes longer counts as failed.
const RequestTimeout = 10 * time.Second

// trafficPaths are every way west reaches the exporters: east's mirror,
// north's, and the clusterset name spread over both.
func trafficPaths() []string {
	return []string{contract.MirrorName("echo", "east"), contract.MirrorName("echo", "north"), contract.ClustersetName("echo")}
}

// tally counts what a traffic source did and keeps its first failure.
type tally struct {
	done, failed atomic.Int64
	firstErr     atomic.Value
}

func (t *tally) fail(format string, args ...any) {
	t.failed.Add(1)
	t.firstErr.CompareAndSwap(nil, time.Now().UTC().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

// result returns the counts and the first failure ("" if none).
func (t *tally) result() (done, failed int64, first string) {
	if v := t.firstErr.Load(); v != nil {
		first = v.(string)
	}
	return t.done.Load(), t.failed.Load(), first
}

// traffic is requests from a west pod at a fixed rate, round-robin over
// paths, each with a fresh connection (so every one opens a tunnel stream).
type traffic struct {
	tally
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startTraffic sends rate requests a second until stop is called or ctx ends.
func (e *Env) startTraffic(ctx context.Context, rate int, paths []string) *traffic {
	t := &traffic{}
	runCtx, cancel := context.WithCancel(ctx)
	t.cancel = cancel
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
			}
			svc := paths[i%len(paths)]
			t.wg.Add(1)
			go func() {
				defer t.wg.Done()
				// ctx, not runCtx: a request under way when the run stops
				// is finished, not cancelled into a failure.
				rctx, cancel := context.WithTimeout(ctx, RequestTimeout)
				defer cancel()
				t.done.Add(1)
				if _, err := e.West.Request(rctx, Namespace, svc, 80, "traffic"); err != nil {
					t.fail("%s: %v", svc, err)
				}
			}()
		}
	}()
	return t
}

// stop ends the traffic, waits for the requests under way, and returns the
// counts and the first failure ("" if none).
func (t *traffic) stop() (sent, failed int64, first string) {
	t.cancel()
	t.wg.Wait()
	return t.result()
}

// LongConnInterval is how often a long-lived connection exchanges a line.
const LongConnInterval = 200 * time.Millisecond

// longConns are connections from a west pod that stay open, one per path,
// and exchange a line every LongConnInterval: what a database pool or a
// gRPC channel does, and what a cut session breaks.
type longConns struct {
	tally  // done counts lines exchanged
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// openLongConns dials one connection per path and keeps each busy until
// stop; a connection that fails is counted and not reopened.
func (e *Env) openLongConns(ctx context.Context, paths []string) (*longConns, error) {
	l := &longConns{}
	runCtx, cancel := context.WithCancel(ctx)
	l.cancel = cancel
	for _, svc := range paths {
		conn, err := e.West.Dial(ctx, Namespace, svc, 80)
		if err != nil {
			l.stop()
			return nil, fmt.Errorf("long-lived connection to %s: %w", svc, err)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer conn.Close()
			r := bufio.NewReader(conn)
			tick := time.NewTicker(LongConnInterval)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-runCtx.Done():
					return
				case <-tick.C:
				}
				_ = conn.SetDeadline(time.Now().Add(RequestTimeout))
				_, err := fmt.Fprintf(conn, "line %d\n", i)
				if err == nil {
					_, err = r.ReadString('\n')
				}
				if err != nil {
					l.fail("long-lived %s after %d lines: %v", svc, i, err)
					return
				}
				l.done.Add(1)
			}
		}()
	}
	return l, nil
}

// stop closes the connections and returns the lines exchanged, the
// connections that failed, and the first failure.
func (l *longConns) stop() (exchanges, failed int64, first string) {
	l.cancel()
	l.wg.Wait()
	return l.result()
}
