package gateway

import (
	"bufio"
	"io"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/internal/tunnel"
)

func dests(weights ...uint32) []Destination {
	out := make([]Destination, len(weights))
	for i, w := range weights {
		out[i] = Destination{Cluster: string(rune('a' + i)), Weight: w}
	}
	return out
}

// share counts where n consecutive connections start.
func share(p picker, ds []Destination, n int) map[string]int {
	got := map[string]int{}
	for turn := range uint64(n) {
		got[ds[p.order[p.start(turn)]].Cluster]++
	}
	return got
}

func TestPickerSplitsByWeight(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []uint32
		want    map[string]float64 // expected share per destination
	}{
		{"proportional 1:3", []uint32{1, 3}, map[string]float64{"a": 0.25, "b": 0.75}},
		{"90/10", []uint32{90, 10}, map[string]float64{"a": 0.9, "b": 0.1}},
		{"a zero takes nothing", []uint32{0, 5, 5}, map[string]float64{"b": 0.5, "c": 0.5}},
		{"all zero: even", []uint32{0, 0, 0, 0}, map[string]float64{"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25}},
		{"0/100", []uint32{0, 100}, map[string]float64{"b": 1}},
		{"many, uneven", []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
			func() map[string]float64 {
				m := map[string]float64{}
				for i := range 12 {
					m[string(rune('a'+i))] = float64(i+1) / 78
				}
				return m
			}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := dests(tc.weights...)
			p := newPicker(ds)
			// Any window is close to the weights, not only long runs:
			// connections 0-199 and 1000-2999 alike.
			for _, n := range []int{200, 2000} {
				got := share(p, ds, n)
				for c, w := range tc.want {
					if d := math.Abs(float64(got[c])/float64(n) - w); d > 0.01+2.0/float64(n) {
						t.Errorf("%d connections: %s got %d (%.3f), want %.3f", n, c, got[c], float64(got[c])/float64(n), w)
					}
				}
				for c := range got {
					if _, ok := tc.want[c]; !ok {
						t.Errorf("%d connections: %s got %d, want none", n, c, got[c])
					}
				}
			}
		})
	}
}

// Connections interleave: with 50/50, no destination gets more than a few
// in a row (a counter taken modulo the total would give it 50).
func TestPickerInterleaves(t *testing.T) {
	ds := dests(50, 50)
	p := newPicker(ds)
	run, longest, last := 0, 0, -1
	for turn := range uint64(1000) {
		i := p.start(turn)
		if i == last {
			run++
		} else {
			run = 1
		}
		last, longest = i, max(longest, run)
	}
	if longest > 3 {
		t.Errorf("longest run on one destination: %d", longest)
	}
}

// BenchmarkPickerStart is the policy's cost on the egress hot path: one
// choice, no allocation.
func BenchmarkPickerStart(b *testing.B) {
	for _, n := range []int{2, 8, 64} {
		ws := make([]uint32, n)
		for i := range ws {
			ws[i] = uint32(i + 1)
		}
		p := newPicker(dests(ws...))
		b.Run(string(rune('0'+n/10))+string(rune('0'+n%10))+"-destinations", func(b *testing.B) {
			b.ReportAllocs()
			var sink int
			for i := range b.N {
				sink += p.start(uint64(i))
			}
			_ = sink
		})
	}
}

// namedEcho answers with name, then echoes until the client half-closes.
func namedEcho(name string) func(*net.TCPConn, *backend) {
	return func(c *net.TCPConn, _ *backend) {
		if _, err := c.Write([]byte(name + "\n")); err != nil {
			return
		}
		_, _ = io.Copy(c, c)
	}
}

// A change of weights applies from the next connection (issue 12: a
// 90/10 split moved to 0/100 sends every new connection to north at once),
// and a connection already open to east carries on, unaware.
func TestWeightChangeAppliesToNewConnectionsOnly(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.export("web", nil, newBackend(t, namedEcho("east")).addr())
	north := newRemoteGateway(t, p, "north", "web", newBackend(t, namedEcho("north")).addr())
	addr := routeToBoth(t, p, north, 90, 10)
	first := func(c net.Conn) string {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v\n%s", err, p.failureCounters())
		}
		_ = c.SetReadDeadline(time.Time{})
		return strings.TrimSpace(line)
	}
	// A long-lived connection that landed on east (90% of them do).
	var toEast net.Conn
	for range 20 {
		c := dial(t, addr)
		if first(c) == "east" {
			toEast = c
			break
		}
		c.Close()
	}
	if toEast == nil {
		t.Fatal("no connection of 20 reached east at 90%")
	}

	port := toEast.RemoteAddr().(*net.TCPAddr).Port
	web := tunnel.Target{Namespace: "default", Service: "web", Port: 80}
	if err := p.eg.SetRoutes([]Route{{Port: port, Namespace: "default", Destinations: []Destination{
		{Cluster: "east", Target: web, Weight: 0}, {Cluster: "north", Target: web, Weight: 100},
	}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		c := dial(t, addr)
		if got := first(c); got != "north" {
			t.Fatalf("connection %d after the change went to %q, want north", i, got)
		}
		c.Close()
	}
	if _, err := toEast.Write([]byte("still there\n")); err != nil {
		t.Fatal(err)
	}
	if got := first(toEast); got != "still there" {
		t.Fatalf("the connection open to east before the change answered %q", got)
	}
}
