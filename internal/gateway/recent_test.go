package gateway

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"ferry.dev/ferry/internal/tunnel"
)

func TestRecentCountsTheLastMinute(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	r := newRecent(func() time.Time { return now })
	for range 5 {
		r.add("app/web", "east")
	}
	now = now.Add(30 * time.Second)
	r.add("app/web", "east")
	r.add("app/web", "north")
	reg := prometheus.NewRegistry()
	reg.MustRegister(r)
	want := func(east, north string) string {
		return `
# HELP ferry_gateway_clusterset_connections_last_minute New connections of a clusterset service that each cluster took over the last minute (in 10 s steps), for ferry traffic.
# TYPE ferry_gateway_clusterset_connections_last_minute gauge
ferry_gateway_clusterset_connections_last_minute{cluster="east",service="app/web"} ` + east + `
ferry_gateway_clusterset_connections_last_minute{cluster="north",service="app/web"} ` + north + "\n"
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want("6", "1"))); err != nil {
		t.Fatal(err)
	}
	// 40 s on, the first five are more than a minute old.
	now = now.Add(40 * time.Second)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want("1", "1"))); err != nil {
		t.Fatal(err)
	}
	// A minute after the last, nothing; a route gone, no series.
	now = now.Add(time.Minute)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want("0", "0"))); err != nil {
		t.Fatal(err)
	}
	r.keepOnly(map[string]bool{})
	if n := testutil.CollectAndCount(r); n != 0 {
		t.Fatalf("%d series after the service's route went", n)
	}
}

// A clusterset route's connections are counted per (service, cluster), in
// total and over the last minute; a mirror route's are not.
func TestClustersetConnectionsAreCountedPerDestination(t *testing.T) {
	p, _, addr := spreadRoute(t)
	_, port, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(port)
	web := tunnel.Target{Namespace: "default", Service: "web", Port: 80}
	dests := []Destination{{Cluster: "east", Target: web, Weight: 1}, {Cluster: "north", Target: web, Weight: 3}}
	if err := p.eg.SetRoutes([]Route{{Port: pn, Namespace: "default", Destinations: dests, Clusterset: true}}); err != nil {
		t.Fatal(err)
	}
	served := map[string]int{}
	for range 40 {
		served[hit(t, addr)]++
	}
	for _, c := range []string{"east", "north"} {
		if got := testutil.ToFloat64(p.egMetrics.ClustersetConns.WithLabelValues("default/web", c)); int(got) != served[c] {
			t.Errorf("%s: counted %v, served %d", c, got, served[c])
		}
	}
	for c, w := range map[string]float64{"east": 1, "north": 3} {
		if got := testutil.ToFloat64(p.egMetrics.ClustersetWeight.WithLabelValues("default/web", c)); got != w {
			t.Errorf("%s: weight series %v, want %v", c, got, w)
		}
	}
	if got := testutil.CollectAndCount(p.egMetrics.recent); got != 2 {
		t.Errorf("%d last-minute series, want 2", got)
	}
	// The route goes: so do its series.
	if err := p.eg.SetRoutes(nil); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(p.egMetrics.ClustersetConns) + testutil.CollectAndCount(p.egMetrics.recent) + testutil.CollectAndCount(p.egMetrics.ClustersetWeight); n != 0 {
		t.Errorf("%d series left after the route went", n)
	}
}
