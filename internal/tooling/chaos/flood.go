package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tunnel"
)

// B1 criteria and the gateway's handshake limits they are stated against
// (tunnel.DefaultLimits).
const (
	// B1RSSLimit bounds the flooded gateway's resident memory.
	B1RSSLimit = 256 << 20
	// B1Sources is how many addresses the flood comes from.
	B1Sources = 100
	// b1Slack allows for a busy machine on top of a timeout.
	b1Slack = 2 * time.Second
)

// handshakeTimeout is the gateway's default: a connection that has not
// finished its TLS handshake by then is closed (one that sends nothing, at
// the shorter ClientHello timeout).
var handshakeTimeout = tunnel.DefaultLimits().HandshakeTimeout

// slowConn is one attacking connection's fate.
type slowConn struct {
	opened, closed time.Time
	refused        bool // the dial itself failed
}

// B1 opens conns connections to east's gateway ingress port from
// B1Sources addresses of north's site, none of which completes a TLS
// handshake: half send nothing, half dribble a ClientHello one byte a
// second (slowloris). Meanwhile west's gateway is killed and restarted, so
// a legitimate peer has to connect while the flood runs. The scenario
// samples east's gateway's RSS, times when the gateway closes each
// connection, and times west's first request through east's mirror.
func (e *Env) B1(ctx context.Context, conns int) (row Row, err error) {
	row = Row{ID: "B1", Scenario: fmt.Sprintf("%d slowloris connections from %d addresses on a gateway's TLS port; a legitimate peer connecting meanwhile", conns, B1Sources),
		Criterion: fmt.Sprintf("gateway RSS ≤ %d MiB; each slow connection closed within the handshake timeout (%s); the peer gets through", B1RSSLimit>>20, handshakeTimeout)}
	srcs, err := e.North.Site.ExtraWANAddrs(B1Sources)
	if err != nil {
		return row, err
	}
	gw := e.East.Gateway
	base, err := gw.RSS()
	if err != nil {
		return row, err
	}
	stopSampling := samplePeakRSS(ctx, gw)
	defer stopSampling()

	fates := make([]slowConn, conns)
	var opened atomic.Int64
	var wg sync.WaitGroup
	floodCtx, stopFlood := context.WithTimeout(ctx, handshakeTimeout+30*time.Second)
	defer stopFlood()
	began := time.Now()
	per := (conns + len(srcs) - 1) / len(srcs)
	for s, src := range srcs {
		lo, hi := s*per, min((s+1)*per, conns)
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.flood(floodCtx, src, fates[lo:hi], lo, &opened)
		}()
	}

	// The legitimate peer: west's gateway restarts mid-flood (a tenth of
	// the connections dialled) and must connect to east's through it.
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return opened.Load() >= int64(conns/10), nil
	}); err != nil {
		return row, fmt.Errorf("the flood did not start: %w", err)
	}
	west := e.West
	west.Gateway.Kill()
	restarted := time.Now()
	if err := (daemon{west, contract.GatewayName}).start(ctx); err != nil {
		return row, err
	}
	var peerIn time.Duration
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := west.Request(ctx, Namespace, contract.MirrorName("echo", "east"), 80, "ping")
		return err == nil, nil
	})
	if err != nil {
		return row, fmt.Errorf("west never reached east through the flood: %w\n%s", err, west.Gateway.Tail(20))
	}
	peerIn = time.Since(restarted)
	wg.Wait()
	peak := stopSampling()

	var lifetimes []time.Duration
	refused, open := 0, 0
	for _, f := range fates {
		switch {
		case f.refused:
			refused++
		case f.closed.IsZero():
			open++
		default:
			lifetimes = append(lifetimes, f.closed.Sub(f.opened))
		}
	}
	slices.Sort(lifetimes)
	longest := time.Duration(0)
	if len(lifetimes) > 0 {
		longest = lifetimes[len(lifetimes)-1]
	}
	row.Pass = peak <= B1RSSLimit && open == 0 && longest <= handshakeTimeout+b1Slack
	row.Figure = fmt.Sprintf("gateway RSS peak %d MiB (%d before); longest slow connection %s, %d still open; the peer through %s after its restart",
		peak>>20, base>>20, since(longest), open, since(peerIn))
	if len(lifetimes) > 0 {
		row.detail("%d connections closed by the gateway: p50 after %s, p99 %s; %d refused at dial", len(lifetimes),
			since(lifetimes[len(lifetimes)/2]), since(lifetimes[len(lifetimes)*99/100]), refused)
	}
	row.detail("flood of %d connections ran %s", conns, since(time.Since(began)))
	return row, nil
}

// flood opens len(fates) connections from src to east's gateway, one at a
// time, and keeps each open until the gateway closes it or ctx ends; the
// connection with index i (counting from first) dribbles a ClientHello if
// i is odd, and sends nothing if it is even.
func (e *Env) flood(ctx context.Context, src string, fates []slowConn, first int, opened *atomic.Int64) {
	target := e.East.GatewayAddr()
	var held sync.WaitGroup
	defer held.Wait()
	for i := range fates {
		var c net.Conn
		err := e.North.Site.NS.Do(func() (err error) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
			c, err = d.DialContext(ctx, "tcp", target)
			return err
		})
		opened.Add(1)
		if err != nil {
			fates[i].refused = true
			continue
		}
		fates[i].opened = time.Now()
		held.Add(1)
		go func() {
			defer held.Done()
			defer c.Close()
			fates[i].closed = holdOpen(ctx, c, (first+i)%2 == 1)
		}()
	}
}

// clientHelloStart is the start of a TLS record carrying a ClientHello:
// enough to look like a handshake that is on its way.
var clientHelloStart = []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}

// holdOpen keeps c open, dribbling a ClientHello a byte a second if
// dribble, until the peer closes it (returns when) or ctx ends (zero).
func holdOpen(ctx context.Context, c net.Conn, dribble bool) time.Time {
	closed := make(chan time.Time, 1)
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				if !errors.Is(err, net.ErrClosed) {
					closed <- time.Now()
				}
				close(closed)
				return
			}
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case at, ok := <-closed:
			if !ok {
				return time.Time{}
			}
			return at
		case <-ctx.Done():
			_ = c.Close()
			<-closed
			return time.Time{}
		case <-tick.C:
			if dribble && n < len(clientHelloStart) {
				_, _ = c.Write(clientHelloStart[n : n+1])
			}
		}
	}
}
