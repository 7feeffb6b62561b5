package netns

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serveOnce accepts connections and answers each with reply.
func serveOnce(t *testing.T, l net.Listener, reply string) {
	t.Helper()
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, reply)
			c.Close()
		}
	}()
}

func readAll(t *testing.T, ctx context.Context, ns *NS, addr string) (string, error) {
	t.Helper()
	c, err := ns.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	return string(b), err
}

// TestIsolation is requirement I's network in miniature: a pod in west cannot
// reach a pod in east, but it can reach east's gateway address on the WAN.
func TestIsolation(t *testing.T) {
	RequireRoot(t)
	topo, err := NewTopology("west", "east")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Error(err)
		}
	})
	west, east := topo.Site("west"), topo.Site("east")

	podLn, err := east.NS.Listen("tcp", net.JoinHostPort(east.PodAddr(10), "8080"))
	if err != nil {
		t.Fatal(err)
	}
	serveOnce(t, podLn, "east-pod")
	gwLn, err := east.NS.Listen("tcp", net.JoinHostPort(east.WANAddr, "4143"))
	if err != nil {
		t.Fatal(err)
	}
	serveOnce(t, gwLn, "east-gateway")

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	// Inside east, the pod is reachable: the listener really works.
	if got, err := readAll(t, ctx, east.NS, podLn.Addr().String()); err != nil || got != "east-pod" {
		t.Fatalf("east pod from inside east: got %q, %v", got, err)
	}
	// From west, the gateway's WAN address is reachable...
	if got, err := readAll(t, ctx, west.NS, gwLn.Addr().String()); err != nil || got != "east-gateway" {
		t.Fatalf("east gateway from west: got %q, %v", got, err)
	}
	// ...and east's pod network is not routed at all.
	_, err = readAll(t, ctx, west.NS, podLn.Addr().String())
	if !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("east pod from west: want network unreachable, got %v", err)
	}
	// Neither is the host: the host's loopback is not the namespace's.
	hostLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOnce(t, hostLn, "host")
	if _, err := readAll(t, ctx, west.NS, hostLn.Addr().String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("host loopback listener from west: want connection refused (own loopback), got %v", err)
	}
}

// timedOut: the dial ran out of time, as against a refusal or an
// unreachable route. The dialer reports its context's deadline either as
// the context's error or, when the socket's own deadline (set from the
// context) fires first, which a busy machine makes likely, as the poller's
// "i/o timeout".
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// TestPartition cuts west from east and heals it: during the partition a
// dial from west to east's WAN address times out (dropped, not refused),
// north still reaches east, and after the heal west does again.
func TestPartition(t *testing.T) {
	RequireRoot(t)
	topo, err := NewTopology("west", "east", "north")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Error(err)
		}
	})
	west, east, north := topo.Site("west"), topo.Site("east"), topo.Site("north")
	ln, err := east.NS.Listen("tcp", net.JoinHostPort(east.WANAddr, "4143"))
	if err != nil {
		t.Fatal(err)
	}
	serveOnce(t, ln, "east")
	dial := func(from *Site, timeout time.Duration) (string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		return readAll(t, ctx, from.NS, ln.Addr().String())
	}
	if got, err := dial(west, 10*time.Second); err != nil || got != "east" {
		t.Fatalf("before the partition: got %q, %v", got, err)
	}
	heal, err := topo.Partition("west", "east")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(west, time.Second); !timedOut(err) {
		t.Fatalf("west to east during the partition: want a timeout (silent drop), got %v", err)
	}
	if got, err := dial(north, 10*time.Second); err != nil || got != "east" {
		t.Fatalf("north to east during the partition: got %q, %v", got, err)
	}
	if err := heal(); err != nil {
		t.Fatal(err)
	}
	if got, err := dial(west, 10*time.Second); err != nil || got != "east" {
		t.Fatalf("after the heal: got %q, %v", got, err)
	}
}

func TestCommandRunsInsideNamespace(t *testing.T) {
	RequireRoot(t)
	topo, err := NewTopology("solo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo.Close() })
	out, err := topo.Sites[0].NS.Command("ip", "-o", "addr", "show", "dev", "wan0").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), topo.Sites[0].WANAddr+"/24") {
		t.Fatalf("wan0 inside the namespace should carry %s, got:\n%s", topo.Sites[0].WANAddr, out)
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	RequireRoot(t)
	topo, err := NewTopology("a", "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(runDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), topo.Prefix) {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
}

// A namespace whose creator has died is removed by the next topology.
func TestReapStaleAfterCrash(t *testing.T) {
	RequireRoot(t)
	// PID 2^22+1 is above the kernel's pid_max, so it can never be alive.
	stale := namePrefix(1<<22+1) + "x-wan"
	if _, err := create(stale); err != nil {
		t.Fatal(err)
	}
	ReapStale()
	if _, err := os.Stat(runDir + "/" + stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale namespace %s survived ReapStale (stat: %v)", stale, err)
	}
}
