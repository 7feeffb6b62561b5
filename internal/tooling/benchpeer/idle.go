package benchpeer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// WorkIdle holds many connections open without traffic and reports what
// each costs the proxies in resident memory.
const WorkIdle = "idle"

// idleDialers is how many idle connections are opened at once: enough to
// keep a run short, few enough not to measure a connection storm.
const idleDialers = 32

// idleSettle bounds the wait for the proxies' RSS to stop growing once the
// connections are up (allocations finish a little after the last echo).
const idleSettle = 5 * time.Second

// raiseNoFile makes room for the idle workload's descriptors in this
// process (each idle connection is a client socket and a backend socket
// here) and in the proxies started after it, which inherit the limit.
func raiseNoFile(conns int) error {
	want := uint64(2*conns + 512)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("benchpeer: RLIMIT_NOFILE: %w", err)
	}
	if lim.Cur >= want {
		return nil
	}
	lim.Cur = want
	if lim.Max < want {
		lim.Max = want // only with CAP_SYS_RESOURCE
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("benchpeer: %d idle connections need %d descriptors here and in each proxy; raise the hard `ulimit -n`, or pass a smaller -idle: %w", conns, want, err)
	}
	return nil
}

// openIdle opens n connections, each with one echo so that every proxy has
// finished connecting it end to end, and returns them open.
func openIdle(ctx context.Context, addr string, n, msg int, idle time.Duration) ([]deadlineConn, error) {
	conns := make([]deadlineConn, n)
	work := make(chan int)
	errs := make(chan error, idleDialers)
	var wg sync.WaitGroup
	for range idleDialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := echoRequest(msg, true)
			req[0] = modeIdle // silent for the rest of the run, on purpose
			resp := make([]byte, msg)
			for i := range work {
				c, err := dial(ctx, addr, idle)
				if err == nil {
					if _, err = c.Write(req); err == nil {
						_, err = io.ReadFull(c, resp)
					}
					if err == nil && !bytes.Equal(resp, req[1:]) {
						err = errors.New("echo differs from request")
					}
					if err != nil {
						c.Close()
					}
				}
				if err != nil {
					errs <- fmt.Errorf("idle connection %d: %w", i, err)
					return
				}
				conns[i] = c
			}
		}()
	}
	var err error
feed:
	for i := range n {
		select {
		case work <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		closeIdle(conns)
		return nil, err
	}
	return conns, nil
}

func closeIdle(conns []deadlineConn) {
	for _, c := range conns {
		if c.Conn != nil {
			c.Close()
		}
	}
}

// measureIdle reports the proxies' RSS growth per idle connection: RSS
// before, then with n connections open once it has settled.
func measureIdle(ctx context.Context, cfg Config, t target) ([]measurement, error) {
	before, err := t.rss()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	conns, err := openIdle(ctx, t.addr, cfg.IdleConns, cfg.MsgSize, cfg.IOTimeout)
	if err != nil {
		return nil, err
	}
	defer closeIdle(conns)
	opened := time.Since(start)
	after, err := settledRSS(ctx, t)
	if err != nil {
		return nil, err
	}
	per := float64(after-before) / float64(cfg.IdleConns) / 1024
	return []measurement{
		{"RSS per idle conn", "KiB/conn", false, per},
		{"opened in", "s", false, opened.Seconds()},
	}, nil
}

// settledRSS samples RSS until two samples 200 ms apart differ by under
// 1 %, or idleSettle passes, and returns the last.
func settledRSS(ctx context.Context, t target) (int64, error) {
	last, err := t.rss()
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(idleSettle)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		cur, err := t.rss()
		if err != nil {
			return 0, err
		}
		if d := cur - last; d < last/100 && -d < last/100 {
			return cur, nil
		}
		last = cur
	}
	return last, nil
}

// rss is the child's resident set size in bytes, from /proc/<pid>/status.
func (p *proc) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("benchpeer: rss of %s: %w", p.name, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("benchpeer: rss of %s: %w", p.name, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("benchpeer: rss of %s: no VmRSS", p.name)
}
