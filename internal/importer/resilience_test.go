package importer_test

import (
	"maps"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// objectWrites keeps the Service and EndpointSlice writes of a count: the
// mirrors, as opposed to the Link's own status.
func objectWrites(c map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range c {
		if strings.HasSuffix(k, " Service") || strings.HasSuffix(k, " EndpointSlice") {
			out[k] = v
		}
	}
	return out
}

// settle waits until the Link reports n imports, all conditions true, then
// a little more so trailing reconciles (triggered by the importer's own
// writes) have run.
func settle(t *testing.T, link string, n int32) {
	t.Helper()
	testkit.Eventually(t, link+" settled", func() bool {
		l := getLink(t, link)
		return l.Status.ImportedServices == n && condition(l, ferryv1.LinkSynced).Status == metav1.ConditionTrue &&
			condition(l, ferryv1.LinkConnected).Status == metav1.ConditionTrue &&
			condition(l, ferryv1.LinkGatewayHealthy).Status == metav1.ConditionTrue
	})
	time.Sleep(500 * time.Millisecond)
}

// TestFeedReconnect: the stream is cut, exports change while it is down;
// after the reconnect the mirrors converge with exactly the writes the
// changes need: no spurious deletes, nothing rewritten. Both ways back are
// covered: a resume (deltas) and a fresh snapshot (history compacted).
func TestFeedReconnect(t *testing.T) {
	if err := west.EnsureNamespace(ctxT(t), "resume"); err != nil {
		t.Fatal(err)
	}
	feed := newFakeFeed(export("resume", "a", 80), export("resume", "b", 80), export("resume", "c", 80))
	h := startImporter(t, map[string]*fakeFeed{"east-gw:4143": feed}, &fakeProber{})
	createLink(t, newLink("reconnect", "east-gw:4143"))
	t.Cleanup(func() { deleteLink(t, "reconnect") })
	settle(t, "reconnect", 3)

	for _, snapshot := range []bool{false, true} {
		name := map[bool]string{false: "resume", true: "snapshot"}[snapshot]
		t.Run(name, func(t *testing.T) {
			before := h.writes.Snapshot()
			feed.SetUp(false)
			egressOf := func(name string) int32 {
				if s := getService(t, "resume", name+"-east"); s != nil {
					return s.Spec.Ports[0].TargetPort.IntVal
				}
				return 0
			}
			testkit.Eventually(t, "disconnect reported", func() bool {
				return condition(getLink(t, "reconnect"), ferryv1.LinkConnected).Status == metav1.ConditionFalse
			})
			// While down: one export changes port, one appears, one goes.
			var changed, added exports.Export
			var gone exports.Key
			if !snapshot {
				changed, added, gone = export("resume", "a", 8080), export("resume", "d", 80), exports.Key{Namespace: "resume", Name: "c"}
			} else {
				changed, added, gone = export("resume", "b", 9090), export("resume", "e", 80), exports.Key{Namespace: "resume", Name: "d"}
			}
			egressBefore := egressOf(changed.Name)
			feed.Set(changed)
			feed.Set(added)
			feed.Delete(gone)
			if snapshot {
				feed.mu.Lock()
				feed.history = nil // the server no longer has our version
				feed.mu.Unlock()
			}
			feed.SetUp(true)
			settle(t, "reconnect", 3)
			if s := getService(t, "resume", changed.Name+"-east"); s == nil || s.Spec.Ports[0].Port != changed.Ports[0].Port {
				t.Fatalf("%s not updated: %+v", changed.Name, s)
			}
			if getService(t, "resume", added.Name+"-east") == nil || getService(t, "resume", gone.Name+"-east") != nil {
				t.Fatal("added export not mirrored, or removed export still mirrored")
			}
			got := objectWrites(h.writes.Since(before))
			want := map[string]int{
				"update Service": 1,
				"create Service": 1, "create EndpointSlice": 1,
				"delete Service": 1, "delete EndpointSlice": 1,
			}
			// The new exported port gets the lowest free egress port, which
			// may be the one its old port just freed; the slice changes only
			// if the egress port did.
			if egressOf(changed.Name) != egressBefore {
				want["update EndpointSlice"] = 1
			}
			if !maps.Equal(got, want) {
				t.Errorf("writes after reconnect: %v\nwant exactly the changes: %v", got, want)
			}
			n, resumed, snap := feed.Streams()
			if snap[n-1] != snapshot || (!snapshot && resumed[n-1] == 0) {
				t.Errorf("stream %d: resumeFrom %d, snapshot %v; want snapshot=%v", n, resumed[n-1], snap[n-1], snapshot)
			}
			t.Logf("writes: %v (status: %v)", got, h.writes.Since(before)["patch Link/status"])
		})
	}
}

// TestRemoteDown: when the remote is unreachable the mirrors stay; after
// the probe threshold their endpoints turn not-ready; when it returns they
// turn ready. Each transition is one write per slice, and nothing else.
func TestRemoteDown(t *testing.T) {
	if err := west.EnsureNamespace(ctxT(t), "outage"); err != nil {
		t.Fatal(err)
	}
	feed := newFakeFeed(export("outage", "db", 5432))
	prober := &fakeProber{}
	h := startImporter(t, map[string]*fakeFeed{"east-gw:4143": feed}, prober)
	createLink(t, newLink("outage", "east-gw:4143")) // period 100ms, threshold 3
	t.Cleanup(func() { deleteLink(t, "outage") })
	settle(t, "outage", 1)
	if !allReady(getSlice(t, "outage", "db-east"), true) {
		t.Fatal("mirror not ready before the outage")
	}
	before := h.writes.Snapshot()

	down := time.Now()
	prober.SetDown(true)
	feed.SetUp(false)
	testkit.Eventually(t, "endpoints not ready", func() bool { return allReady(getSlice(t, "outage", "db-east"), false) })
	if took := time.Since(down); took < 150*time.Millisecond {
		t.Errorf("endpoints turned not-ready after %s, before 3 probes (period 100ms) could fail", took)
	}
	testkit.Eventually(t, "status shows the outage", func() bool {
		l := getLink(t, "outage")
		return condition(l, ferryv1.LinkGatewayHealthy).Status == metav1.ConditionFalse &&
			condition(l, ferryv1.LinkConnected).Status == metav1.ConditionFalse &&
			strings.Contains(l.Status.Message, "mirrors stay")
	})
	time.Sleep(time.Second) // 10 more failing probes change nothing
	if getService(t, "outage", "db-east") == nil {
		t.Fatal("mirror withdrawn during an outage without a staleness limit")
	}

	prober.SetDown(false)
	feed.SetUp(true)
	testkit.Eventually(t, "endpoints ready again", func() bool { return allReady(getSlice(t, "outage", "db-east"), true) })
	settle(t, "outage", 1)
	got := objectWrites(h.writes.Since(before))
	if want := map[string]int{"update EndpointSlice": 2}; !maps.Equal(got, want) {
		t.Errorf("writes over the outage: %v, want %v (not-ready, then ready)", got, want)
	}
	t.Logf("status writes over the outage: %d", h.writes.Since(before)["patch Link/status"])
}

// TestPartitionHealsAtTheProbe: a partition loses the feed's stream
// silently (no reset; TCP would retransmit into it on a backoff of tens of
// seconds) while exports change. When the probe answers again, the
// importer reconnects the feed instead of waiting on the lost stream, and
// the change arrives at once.
func TestPartitionHealsAtTheProbe(t *testing.T) {
	if err := west.EnsureNamespace(ctxT(t), "partition"); err != nil {
		t.Fatal(err)
	}
	feed := newFakeFeed(export("partition", "db", 5432))
	prober := &fakeProber{}
	startImporter(t, map[string]*fakeFeed{"east-gw:4143": feed}, prober)
	createLink(t, newLink("partition", "east-gw:4143")) // period 100ms, threshold 3
	t.Cleanup(func() { deleteLink(t, "partition") })
	settle(t, "partition", 1)

	feed.Partition()
	prober.SetDown(true)
	feed.Set(export("partition", "db", 6543))
	testkit.Eventually(t, "endpoints not ready", func() bool { return allReady(getSlice(t, "partition", "db-east"), false) })
	prober.SetDown(false)
	healed := time.Now()
	testkit.Eventually(t, "the change made during the partition", func() bool {
		s := getService(t, "partition", "db-east")
		return s != nil && s.Spec.Ports[0].Port == 6543 && allReady(getSlice(t, "partition", "db-east"), true)
	})
	n, resumed, snap := feed.Streams()
	t.Logf("mirror current %s after the heal; %d streams, the last resumed from %d (snapshot %t)",
		time.Since(healed).Round(time.Millisecond), n, resumed[n-1], snap[n-1])
	if snap[n-1] {
		t.Error("the reconnect took a snapshot: it should resume from the version it had")
	}
}

// TestProbeGlitchLeavesTheFeed: one failed probe, under the failure
// threshold, says nothing about the feed, though the feed has been silent
// (no heartbeat due yet): its stream is kept, not redialed.
func TestProbeGlitchLeavesTheFeed(t *testing.T) {
	if err := west.EnsureNamespace(ctxT(t), "glitch"); err != nil {
		t.Fatal(err)
	}
	feed := newFakeFeed(export("glitch", "db", 5432))
	prober := &fakeProber{}
	startImporter(t, map[string]*fakeFeed{"east-gw:4143": feed}, prober)
	createLink(t, newLink("glitch", "east-gw:4143")) // period 100ms, threshold 3
	t.Cleanup(func() { deleteLink(t, "glitch") })
	settle(t, "glitch", 1)

	feed.Partition() // the stream stays open and says nothing, as between heartbeats
	before, _, _ := feed.Streams()
	n := prober.FailNext(1)
	testkit.Eventually(t, "the glitch and five good probes after it", func() bool { return prober.Probes() >= n+6 })
	if after, _, _ := feed.Streams(); after != before {
		t.Fatalf("a probe glitch under the threshold redialed the feed: %d streams, then %d", before, after)
	}
}

// TestStalenessLimit: with spec.stalenessLimit, mirrors are withdrawn once
// the remote has been unreachable that long, and come back when it returns.
func TestStalenessLimit(t *testing.T) {
	if err := west.EnsureNamespace(ctxT(t), "stale"); err != nil {
		t.Fatal(err)
	}
	feed := newFakeFeed(export("stale", "cache", 6379))
	prober := &fakeProber{}
	startImporter(t, map[string]*fakeFeed{"east-gw:4143": feed}, prober)
	l := newLink("stale", "east-gw:4143")
	l.Spec.StalenessLimit = &metav1.Duration{Duration: time.Second}
	createLink(t, l)
	t.Cleanup(func() { deleteLink(t, "stale") })
	settle(t, "stale", 1)

	down := time.Now()
	prober.SetDown(true)
	feed.SetUp(false)
	testkit.Eventually(t, "not ready first", func() bool { return allReady(getSlice(t, "stale", "cache-east"), false) })
	testkit.Eventually(t, "withdrawn after the limit", func() bool { return getService(t, "stale", "cache-east") == nil })
	// The limit counts from the last contact, at most one probe period
	// (100ms) before the outage began.
	if took := time.Since(down); took < 900*time.Millisecond {
		t.Errorf("withdrawn after %s, before the 1s staleness limit", took)
	}
	testkit.Eventually(t, "status says withdrawn", func() bool {
		l := getLink(t, "stale")
		return condition(l, ferryv1.LinkSynced).Reason == "Withdrawn" && l.Status.ImportedServices == 0
	})
	prober.SetDown(false)
	feed.SetUp(true)
	testkit.Eventually(t, "back when the remote returns", func() bool { return allReady(getSlice(t, "stale", "cache-east"), true) })
	settle(t, "stale", 1)
}

// TestNeverAnsweredIsNotTrusted (issue 12): a Link whose gateway has never
// answered is not reported healthy, and its mirrors are not ready, from the
// first failed probe rather than after the failure threshold. Once it
// answers, it is trusted; from then on the threshold forgives glitches.
func TestNeverAnsweredIsNotTrusted(t *testing.T) {
	if err := west.EnsureNamespace(ctxT(t), "silent"); err != nil {
		t.Fatal(err)
	}
	feed := newFakeFeed(export("silent", "db", 5432))
	feed.SetUp(false) // nothing listens
	prober := &fakeProber{}
	prober.SetDown(true)
	startImporter(t, map[string]*fakeFeed{"silent-gw:4143": feed}, prober)
	createLink(t, newLink("silent", "silent-gw:4143")) // period 100ms, threshold 3
	t.Cleanup(func() { deleteLink(t, "silent") })
	testkit.Eventually(t, "GatewayHealthy Unknown, not yet answered", func() bool {
		c := condition(getLink(t, "silent"), ferryv1.LinkGatewayHealthy)
		return c.Status == metav1.ConditionUnknown && c.Reason == "NotYetAnswered"
	})
	// Through every later probe it never turns True.
	for range 10 {
		if c := condition(getLink(t, "silent"), ferryv1.LinkGatewayHealthy); c.Status == metav1.ConditionTrue {
			t.Fatalf("a gateway that never answered is reported healthy: %+v", c)
		}
		time.Sleep(50 * time.Millisecond)
	}

	prober.SetDown(false)
	feed.SetUp(true)
	testkit.Eventually(t, "healthy and ready once it answers", func() bool {
		s := getSlice(t, "silent", "db-east")
		return condition(getLink(t, "silent"), ferryv1.LinkGatewayHealthy).Status == metav1.ConditionTrue && s != nil && allReady(s, true)
	})
}
