package gateway

import (
	"bufio"
	"io"
	"math"
	"net"
	"slices"
	"strconv"
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

func TestSteerOrdersTiers(t *testing.T) {
	tiered := func(specs ...[2]int) []Destination { // {weight, tier}
		out := make([]Destination, len(specs))
		for i, s := range specs {
			out[i] = Destination{Cluster: string(rune('a' + i)), Weight: uint32(s[0]), Tier: s[1]}
		}
		return out
	}
	order := func(s steer, ds []Destination) [][]string {
		var out [][]string
		for _, p := range s.tiers {
			var names []string
			for _, i := range p.order {
				names = append(names, ds[i].Cluster)
			}
			out = append(out, names)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		ds   []Destination
		want [][]string
	}{
		{"no tiers: one", tiered([2]int{1, 0}, [2]int{3, 0}), [][]string{{"a", "b"}}},
		{"tiers in order, whatever the route order", tiered([2]int{1, 1}, [2]int{3, 0}, [2]int{2, 1}), [][]string{{"b"}, {"a", "c"}}},
		{"a tier with no weight is skipped", tiered([2]int{0, 0}, [2]int{3, 1}), [][]string{{"b"}}},
		{"a zero weight in a tier takes none", tiered([2]int{0, 0}, [2]int{3, 0}, [2]int{1, 1}), [][]string{{"b"}, {"c"}}},
		{"no weight anywhere: all, evenly", tiered([2]int{0, 0}, [2]int{0, 1}), [][]string{{"a", "b"}}},
	} {
		s := newSteer(tc.ds)
		if got := order(s, tc.ds); !slices.EqualFunc(got, tc.want, slices.Equal[[]string]) {
			t.Errorf("%s: tiers %v, want %v", tc.name, got, tc.want)
		}
		n := 0
		for _, w := range tc.want {
			n += len(w)
		}
		if s.n != n {
			t.Errorf("%s: n %d, want %d", tc.name, s.n, n)
		}
	}
}

// Tiers through real tunnels: every connection goes to the first tier
// while it serves, to the next when it stops (no connection failing), and
// back when it serves again.
func TestTiersFailOverInOrder(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.export("web", nil, newBackend(t, whoami("east")).addr())
	north := newRemoteGateway(t, p, "north", "web", newBackend(t, whoami("north")).addr())
	addr := routeToBoth(t, p, north, 1, 1)
	// routeToBoth gives both tier 0; put north behind east.
	web := tunnel.Target{Namespace: "default", Service: "web", Port: 80}
	_, port, _ := net.SplitHostPort(addr)
	portN, _ := strconv.Atoi(port)
	setTiers := func(eastWeight uint32) {
		t.Helper()
		if err := p.eg.SetRoutes([]Route{{Port: portN, Namespace: "default", Destinations: []Destination{
			{Cluster: "north", Target: web, Weight: 1, Tier: 1}, {Cluster: "east", Target: web, Weight: eastWeight, Tier: 0},
		}}}); err != nil {
			t.Fatal(err)
		}
	}
	setTiers(1)
	for i := range 20 {
		if got := hit(t, addr); got != "east" {
			t.Fatalf("connection %d with east in the first tier went to %q", i, got)
		}
	}
	// East has no ready endpoint: its tier is skipped.
	setTiers(0)
	for i := range 20 {
		if got := hit(t, addr); got != "north" {
			t.Fatalf("connection %d with east at weight 0 went to %q", i, got)
		}
	}
	// East loses its endpoints before its weight says so (the count lags
	// behind): each connection fails over to the next tier.
	setTiers(1)
	p.endpoints.Set("default", "web", 80, nil) // east answers "unavailable"
	for i := range 20 {
		if got := hit(t, addr); got != "north" {
			t.Fatalf("connection %d with east unavailable went to %q\n%s", i, got, p.failureCounters())
		}
	}
}

// BenchmarkSteerStart is where a tiered route's connection starts: the
// first tier's pick, as open makes it for every connection.
func BenchmarkSteerStart(b *testing.B) {
	ds := []Destination{{Cluster: "west", Weight: 2, Tier: 0, Local: true}, {Cluster: "east", Weight: 3, Tier: 1}, {Cluster: "north", Weight: 1, Tier: 1}}
	s := newSteer(ds)
	b.ReportAllocs()
	var sink int
	for i := range b.N {
		for t := range s.tiers {
			sink += s.tiers[t].start(uint64(i))
		}
	}
	_ = sink
}
