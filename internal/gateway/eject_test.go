package gateway

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"ferry.dev/ferry/internal/tooling/testkit"
	"ferry.dev/ferry/internal/tunnel"
)

func TestEjectionBacksOffAndResets(t *testing.T) {
	now := time.Unix(1000, 0)
	var ejections []string
	j := newEjector(time.Second, 8*time.Second, 300*time.Millisecond, 250*time.Millisecond, func() time.Time { return now }, func(c, scope string) { ejections = append(ejections, c+"/"+scope) })
	webD := Destination{Cluster: "north", Target: tunnel.Target{Namespace: "default", Service: "web", Port: 80}}
	apiD := Destination{Cluster: "north", Target: tunnel.Target{Namespace: "default", Service: "api", Port: 80}}
	web, api := j.health(webD), j.health(apiD)

	// Each failure in a row doubles the ejection, up to the cap, ±20%.
	for i, base := range []time.Duration{1, 2, 4, 8, 8} {
		base *= time.Second
		got, started := j.failed(web, webD, true)
		if !started {
			t.Fatalf("failure %d did not start an ejection", i+1)
		}
		if lo, hi := base*8/10, base*12/10; got < lo || got > hi {
			t.Fatalf("failure %d: ejected for %v, want %v..%v", i+1, got, lo, hi)
		}
		if !j.ejected(web, now.UnixNano()) || !j.ejected(api, now.UnixNano()) || j.admit(api, false, now.UnixNano()) {
			t.Fatalf("failure %d: a whole-cluster ejection must cover every service there", i+1)
		}
		// A second report of the same failure, within the ejection, is
		// the same ejection.
		if again, started := j.failed(web, webD, true); again != got || started {
			t.Fatalf("failure %d reported twice: %v then %v", i+1, got, again)
		}
		now = now.Add(got)
		if j.ejected(web, now.UnixNano()) {
			t.Fatalf("failure %d: still ejected after %v", i+1, got)
		}
	}
	if len(ejections) != 5 {
		t.Fatalf("ejections %v, want 5", ejections)
	}
	// Half-open: once the ejection ends, one connection at a time is
	// admitted, the trial; the next may try only when the trial has had
	// its window without an answer.
	if !j.admit(web, false, now.UnixNano()) {
		t.Fatal("the trial was not admitted after the ejection ended")
	}
	if j.admit(api, false, now.UnixNano()) || j.admit(web, false, now.Add(299*time.Millisecond).UnixNano()) {
		t.Fatal("a second connection was admitted during the trial")
	}
	if !j.admit(web, false, now.Add(300*time.Millisecond).UnixNano()) {
		t.Fatal("a trial that never answered blocks the destination for good")
	}
	// A success ends the streak: everyone is admitted, and the next
	// failure ejects for the base.
	j.succeeded(web)
	for range 3 {
		if !j.admit(web, false, now.UnixNano()) || !j.admit(api, false, now.UnixNano()) {
			t.Fatal("not admitted after a success")
		}
	}
	if got, _ := j.failed(web, webD, true); got > 1200*time.Millisecond {
		t.Fatalf("after a success, ejected for %v", got)
	}
	now = now.Add(2 * time.Second)

	// A service's failure ejects that service only.
	j.failed(web, webD, false)
	if !j.ejected(web, now.UnixNano()) || j.ejected(api, now.UnixNano()) {
		t.Fatal("a service ejection must cover that service and no other")
	}
	if last := ejections[len(ejections)-1]; last != "north/service" {
		t.Fatalf("last ejection %q", last)
	}

	// Destinations no route has any more are forgotten: a route that
	// names them again starts afresh.
	j.keepOnly(map[int]Route{1: {Destinations: []Destination{apiD}}})
	if j.ejected(j.health(webD), now.UnixNano()) || j.health(apiD) != api {
		t.Fatal("a forgotten destination is still ejected, or a kept one was forgotten")
	}
}

// A cluster that leaves attempts waiting with no answer for QuietAfter is
// tried after the others; any answer, a rejection too, ends the silence.
func TestQuietClusterIsTriedLast(t *testing.T) {
	now := time.Unix(1000, 0)
	j := newEjector(time.Second, 8*time.Second, time.Second, 500*time.Millisecond, func() time.Time { return now }, nil)
	northD := Destination{Cluster: "north", Target: tunnel.Target{Namespace: "default", Service: "web", Port: 80}}
	north, local := j.health(northD), j.health(Destination{Cluster: "west", Local: true, Target: northD.Target})
	at := func(d time.Duration) int64 { return now.Add(d).UnixNano() }

	first := j.waiting(north)
	if !j.admit(north, false, at(499*time.Millisecond)) {
		t.Fatal("quiet before QuietAfter")
	}
	second := j.waiting(north) // a second attempt does not restart the clock
	if j.admit(north, false, at(500*time.Millisecond)) {
		t.Fatal("attempts unanswered for QuietAfter, and the cluster is still tried first")
	}
	now = now.Add(600 * time.Millisecond)
	first(true) // an answer
	if !j.admit(north, false, at(0)) || !j.admit(north, false, at(499*time.Millisecond)) {
		t.Fatal("an answer did not end the silence")
	}
	if j.admit(north, false, at(500*time.Millisecond)) {
		t.Fatal("the second attempt still waits, unanswered for QuietAfter since the last answer")
	}
	second(false) // timed out: no answer, but nothing waits any more
	if !j.admit(north, false, at(time.Hour)) {
		t.Fatal("quiet with nothing waiting")
	}
	// A local destination is never quiet: it is not a gateway.
	j.waiting(local)
	if !j.admit(local, true, at(time.Hour)) {
		t.Fatal("a local destination was taken for a quiet gateway")
	}
}

// A gateway that hangs (its TCP session up, nothing answered) costs one
// connection an AttemptTimeout, which then goes to the other cluster; the
// hung cluster is ejected, so the next connections do not wait for it, and
// no connection fails. When it answers again and its ejection ends, it
// takes its share again.
func TestHungGatewayIsEjectedAfterOneAttempt(t *testing.T) {
	lim := testLimits()
	lim.AttemptTimeout = 300 * time.Millisecond
	// Long enough that the hung gateway is not retried during the first
	// part (the jitter takes at most 20% off).
	lim.EjectionBase, lim.EjectionMax = 3*time.Second, 3*time.Second
	p := newPair(t, pairOpts{egLimits: lim})
	p.export("web", nil, newBackend(t, whoami("east")).addr())
	north := newRemoteGateway(t, p, "north", "web", newBackend(t, whoami("north")).addr())
	px := testkit.NewFreezeProxy(t, north.addr)
	addr := routeToBoth(t, p, &remoteGateway{in: north.in, addr: px.Addr()}, 0, 0)
	for range 4 { // both take turns while healthy
		hit(t, addr)
	}

	px.Freeze(true)
	start := time.Now()
	for i := range 40 {
		if got := hit(t, addr); got != "east" {
			t.Fatalf("connection %d with north hung: got %q, want east\n%s", i, got, p.failureCounters())
		}
	}
	took := time.Since(start)
	timeouts := testutil.ToFloat64(p.egMetrics.EgressFailed.WithLabelValues("north", ReasonAttemptTimeout))
	// A timeout ejects the service there (the slow party may be its
	// backend); the quiet and ejected service is then tried last.
	ejected := testutil.ToFloat64(p.egMetrics.Ejections.WithLabelValues("north", "service"))
	t.Logf("north hung: 40 connections served by east in %v; %v attempt timeouts at north, %v ejections", took.Round(time.Millisecond), timeouts, ejected)
	if took < 2400*time.Millisecond && (timeouts != 1 || ejected != 1) {
		t.Fatalf("%v attempts timed out at north and %v ejections; within one ejection, want 1 of each\n%s", timeouts, ejected, p.failureCounters())
	}
	if timeouts < 1 {
		t.Fatal("no attempt went to the hung gateway: the test proves nothing")
	}

	// North answers again: once its ejection ends it serves again.
	px.Freeze(false)
	testkit.Eventually(t, "north to serve again after its ejection", func() bool { return hit(t, addr) == "north" })
}

// A cluster that answers that it has no ready endpoint for the service is
// ejected for that service only: the next connections go straight to the
// other cluster.
func TestUnavailableServiceIsEjectedForThatServiceOnly(t *testing.T) {
	lim := testLimits()
	lim.EjectionBase, lim.EjectionMax = 5*time.Second, 5*time.Second
	p := newPair(t, pairOpts{egLimits: lim})
	p.export("web", nil, newBackend(t, whoami("east")).addr())
	// north exports web with no endpoint at all.
	north := newRemoteGateway(t, p, "north", "web")
	addr := routeToBoth(t, p, north, 0, 0)
	// As a clusterset port, so that its per-service series count too.
	_, port, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(port)
	web := tunnel.Target{Namespace: "default", Service: "web", Port: 80}
	if err := p.eg.SetRoutes([]Route{{Port: pn, Namespace: "default", Clusterset: true,
		Destinations: []Destination{{Cluster: "east", Target: web}, {Cluster: "north", Target: web}}}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range 20 {
		if got := hit(t, addr); got != "east" {
			t.Fatalf("connection %d got %q", i, got)
		}
	}
	unavailable := testutil.ToFloat64(p.egMetrics.EgressFailed.WithLabelValues("north", tunnel.StatusUnavailable.String()))
	if time.Since(start) < 4*time.Second && unavailable != 1 {
		t.Fatalf("%v connections tried north, which has no endpoint; want 1\n%s", unavailable, p.failureCounters())
	}
	if got := testutil.ToFloat64(p.egMetrics.Ejections.WithLabelValues("north", "service")); got < 1 {
		t.Fatalf("service ejections %v", got)
	}
	perService := testutil.ToFloat64(p.egMetrics.ClustersetEjections.WithLabelValues("default/web", "north"))
	failedThere := testutil.ToFloat64(p.egMetrics.ClustersetFailures.WithLabelValues("default/web", "north", tunnel.StatusUnavailable.String()))
	if perService < 1 || failedThere != unavailable {
		t.Errorf("per service: %v ejections, %v failed attempts (want ≥ 1, and %v)", perService, failedThere, unavailable)
	}
	if got := testutil.ToFloat64(p.egMetrics.Ejections.WithLabelValues("north", "cluster")); got != 0 {
		t.Fatalf("north's gateway answered; it must not be ejected as a whole (%v)", got)
	}
}

// BenchmarkEjectorAdmit is the ejector's cost on the egress hot path, per
// destination considered: nothing ejected (the common case), and a cluster
// ejected among several.
func BenchmarkEjectorAdmit(b *testing.B) {
	web := Destination{Cluster: "east", Target: tunnel.Target{Namespace: "default", Service: "web", Port: 80}}
	for _, tc := range []struct {
		name    string
		prepare func(*ejector)
	}{
		{"none-ejected", func(*ejector) {}},
		{"others-ejected", func(j *ejector) {
			for _, c := range []string{"north", "south", "west"} {
				d := Destination{Cluster: c, Target: web.Target}
				j.failed(j.health(d), d, true)
			}
		}},
	} {
		j := newEjector(time.Second, 30*time.Second, time.Second, 500*time.Millisecond, time.Now, nil)
		tc.prepare(j)
		h := j.health(web)
		now := time.Now().UnixNano()
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if !j.admit(h, false, now) {
					b.Fatal("not admitted")
				}
			}
		})
	}
}
