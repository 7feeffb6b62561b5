package tunnel

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"ferry.dev/ferry/internal/tooling/testkit"
)

// A flood of stalled handshakes from a few addresses fills every pending
// slot; a peer from a fresh address still completes its handshake and
// opens a tunnel, because it evicts the largest holder's oldest handshake.
func TestHandshakeFloodCannotStarveNewPeer(t *testing.T) {
	lim := testLimits()
	lim.HandshakeTimeout = 20 * time.Second
	lim.ClientHelloTimeout = 20 * time.Second // the flood must outlive the test
	lim.MaxPendingHandshakes = 128
	lim.MaxPendingHandshakesPerIP = 8
	e := newEnv(t, echoHandler{}, lim, nil)

	// 19 flooding addresses, each up to its per-IP share, and they keep
	// coming back while the peer connects.
	var mu sync.Mutex
	var flood []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range flood {
			_ = c.Close()
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	floodOnce := func() {
		for i := 2; i <= 20 && ctx.Err() == nil; i++ {
			for range 8 {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("127.0.0.%d", i))}, Timeout: time.Second}
				c, err := d.Dial("tcp", e.addr)
				if err != nil {
					continue
				}
				mu.Lock()
				flood = append(flood, c)
				mu.Unlock()
			}
		}
	}
	dialFrom(t, "127.0.0.2", e.addr) // skips the test without loopback aliases
	floodOnce()
	// 152 stalled connections for 128 slots: the flood holds every one.
	testkit.EventuallyWithin(t, 5*time.Second, "the flood holds every pending slot", func() bool {
		return e.srvObs.rejects(ReasonHandshakeLimit)+e.srvObs.rejects(ReasonHandshakeEvicted) > 0
	})
	floods := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(flood)
	}
	var flooding sync.WaitGroup
	flooding.Add(1)
	go func() {
		defer flooding.Done()
		for ctx.Err() == nil && floods() < 600 {
			floodOnce()
		}
	}()
	defer func() { cancel(); flooding.Wait() }()

	// The peer, from 127.0.0.50, through the real client.
	obs := newRecorder()
	c, err := NewClient(ClientOptions{
		TLS: e.west.Gateway, Limits: testLimits(), PoolSize: 1, DialTimeout: time.Second,
		Dialer:     &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.50")}},
		MaxBackoff: 200 * time.Millisecond, Observer: obs, Logger: testkit.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetRemotes(map[string]Remote{"east": {Addresses: []string{e.addr}, Identity: e.east.GatewayID()}})
	octx, ocancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer ocancel()
	st, err := c.Open(octx, "east", target)
	if err != nil {
		t.Fatalf("new peer starved: %v (handshake_limit %d, evicted %d)", err,
			e.srvObs.rejects(ReasonHandshakeLimit), e.srvObs.rejects(ReasonHandshakeEvicted))
	}
	_ = st.Close()
	if e.srvObs.rejects(ReasonHandshakeEvicted) == 0 {
		t.Fatal("no flood handshake evicted")
	}
}
