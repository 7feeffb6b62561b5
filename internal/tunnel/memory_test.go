package tunnel

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-yamux/v5"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// splitHandler echoes for the "north" cluster and holds every other
// caller's streams until release is closed.
type splitHandler struct{ release chan struct{} }

func (h splitHandler) ServeStream(ctx context.Context, caller identity.ID, s *Stream) {
	if caller.Cluster == "north" {
		echoHandler{}.ServeStream(ctx, caller, s)
		return
	}
	blockingHandler(h).ServeStream(ctx, caller, s)
}

// memoryLimits give each caller a budget of 8 opening windows, of which 4
// may be served streams' (half), and 16 in all.
func memoryLimits() Limits {
	lim := testLimits()
	lim.MaxStreamWindow = 256 << 10
	lim.MaxCallerStreamMemory = 8 * 256 << 10
	lim.MaxTotalStreamMemory = 16 * 256 << 10
	return lim
}

// addClient returns a client of cluster name (added to e's mesh) with east
// as its remote.
func (e *env) addClient(t *testing.T, name string, poolSize int) *Client {
	t.Helper()
	c := e.mesh.AddCluster(t, name)
	cl, _ := e.client(t, c.Gateway, poolSize, testLimits())
	return cl
}

// echoes checks that c still carries a round trip to east.
func echoes(t *testing.T, c *Client) {
	t.Helper()
	st, err := c.Open(openCtx(t), "east", target)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := st.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(st, b); err != nil || string(b) != "ping" {
		t.Fatalf("echo: %q, %v", b, err)
	}
}

// A caller that holds its whole stream budget, spread over two sessions,
// gets overloaded; another cluster's traffic continues.
func TestCallerStreamMemory(t *testing.T) {
	h := splitHandler{release: make(chan struct{})}
	defer close(h.release)
	e := newEnv(t, h, memoryLimits(), nil)
	west, _ := e.client(t, e.west.Gateway, 2, testLimits())
	testkit.EventuallyWithin(t, 3*time.Second, "two sessions from west", func() bool {
		e.srv.mu.Lock()
		defer e.srv.mu.Unlock()
		return e.srv.perCaller[e.west.GatewayID()] == 2
	})
	for range 4 {
		st, err := west.Open(openCtx(t), "east", target)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
	}
	_, err := west.Open(openCtx(t), "east", target)
	if !isReject(err, StatusOverloaded) {
		t.Fatalf("fifth stream of west: %v, want overloaded", err)
	}
	if n := e.srvObs.rejects(ReasonCallerStreamMemory); n != 1 {
		t.Fatalf("caller memory limit counted %d times, want 1", n)
	}
	echoes(t, e.addClient(t, "north", 1))
}

// The callers together cannot exceed MaxTotalStreamMemory, though each is
// within its own budget.
func TestTotalStreamMemory(t *testing.T) {
	h := splitHandler{release: make(chan struct{})}
	defer close(h.release)
	lim := memoryLimits()
	lim.MaxTotalStreamMemory = 12 * 256 << 10 // 6 served streams in all
	e := newEnv(t, h, lim, nil)
	west, _ := e.client(t, e.west.Gateway, 1, testLimits())
	south := e.addClient(t, "south", 1)
	for _, c := range []*Client{west, west, west, west, south, south} {
		st, err := c.Open(openCtx(t), "east", target)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
	}
	_, err := south.Open(openCtx(t), "east", target)
	if !isReject(err, StatusOverloaded) {
		t.Fatalf("seventh stream: %v, want overloaded", err)
	}
	if n := e.srvObs.rejects(ReasonTotalStreamMemory); n != 1 {
		t.Fatalf("total memory limit counted %d times, want 1", n)
	}
}

// A caller that leaves refused streams half-open over several sessions,
// more of them than its whole memory budget has opening windows for, pins
// nothing and loses nothing; another cluster is untouched.
func TestLingeringStreamsPinNothingPerCaller(t *testing.T) {
	e := newEnv(t, splitHandler{release: make(chan struct{})}, memoryLimits(), nil)
	north := e.addClient(t, "north", 1)
	echoes(t, north)
	var sessions []*yamux.Session
	for range 3 {
		sessions = append(sessions, rawSession(t, e))
	}
	lingerRefused(t, sessions, 30) // the budget has room for 8
	testkit.EventuallyWithin(t, 2*time.Second, "west holds nothing", func() bool {
		k, _ := e.srv.budget.held(e.west.GatewayID().String())
		return k == 0
	})
	for i, s := range sessions {
		if s.IsClosed() {
			t.Fatalf("session %d closed", i)
		}
	}
	if n := e.srvObs.rejects(ReasonCallerStreamMemory); n != 0 {
		t.Fatalf("caller memory limit hit %d times", n)
	}
	echoes(t, north)
}
