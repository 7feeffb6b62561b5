package importer_test

import (
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/tooling/testkit"
)

func manyExports(ns string, n int) []exports.Export {
	out := make([]exports.Export, n)
	for i := range out {
		out[i] = export(ns, fmt.Sprintf("svc-%04d", i), 80)
	}
	return out
}

// TestRestartMakesNoWrites: a controller restart with nothing changed
// writes nothing: not the mirrors, not the Link's status or finalizer.
func TestRestartMakesNoWrites(t *testing.T) {
	if err := west.EnsureNamespace(ctxT(t), "restart"); err != nil {
		t.Fatal(err)
	}
	feed := newFakeFeed(manyExports("restart", 20)...)
	feeds := map[string]*fakeFeed{"east-gw:4143": feed}
	first := startImporter(t, feeds, &fakeProber{})
	createLink(t, newLink("restart", "east-gw:4143"))
	settle(t, "restart", 20)
	first.stop()

	prober := &fakeProber{}
	second := startImporter(t, feeds, prober)
	t.Cleanup(func() { deleteLink(t, "restart") })
	streams, _, _ := feed.Streams()
	testkit.Eventually(t, "new importer subscribed and probed", func() bool {
		n, _, _ := feed.Streams()
		prober.mu.Lock()
		probes := prober.n
		prober.mu.Unlock()
		return n > streams && probes >= 5
	})
	time.Sleep(time.Second)
	if got := second.writes.Snapshot(); len(got) != 0 {
		t.Fatalf("restart with nothing changed wrote %v; want nothing", got)
	}
}

// TestLinkDeletedWhileStopped: a Link deleted while no controller runs
// (its finalizer keeps it) is cleaned up completely after the restart.
func TestLinkDeletedWhileStopped(t *testing.T) {
	if err := west.EnsureNamespace(ctxT(t), "gone"); err != nil {
		t.Fatal(err)
	}
	feeds := map[string]*fakeFeed{"east-gw:4143": newFakeFeed(manyExports("gone", 5)...)}
	first := startImporter(t, feeds, &fakeProber{})
	createLink(t, newLink("deleted-offline", "east-gw:4143"))
	settle(t, "deleted-offline", 5)
	first.stop()

	l := getLink(t, "deleted-offline")
	if !controllerutil.ContainsFinalizer(l, ferryv1.Finalizer) {
		t.Fatalf("finalizers %v: want %s", l.Finalizers, ferryv1.Finalizer)
	}
	if err := west.Client.Delete(ctxT(t), l); err != nil {
		t.Fatal(err)
	}
	if l = getLink(t, "deleted-offline"); l.DeletionTimestamp == nil || ownedCount(t, "deleted-offline") != 10 {
		t.Fatal("while stopped, the Link must wait for its finalizer and its objects stay")
	}
	startImporter(t, feeds, &fakeProber{})
	deleteLink(t, "deleted-offline") // waits until it is gone
	testkit.Eventually(t, "everything the Link owned is gone", func() bool { return ownedCount(t, "deleted-offline") == 0 })
}

// TestOrphansRemoved: objects labelled with a Link that no longer exists
// (its finalizer was removed by hand while no controller ran) are removed
// at the next start.
func TestOrphansRemoved(t *testing.T) {
	if err := west.EnsureNamespace(ctxT(t), "orphans"); err != nil {
		t.Fatal(err)
	}
	feeds := map[string]*fakeFeed{"east-gw:4143": newFakeFeed(manyExports("orphans", 3)...)}
	first := startImporter(t, feeds, &fakeProber{})
	createLink(t, newLink("orphaned", "east-gw:4143"))
	settle(t, "orphaned", 3)
	first.stop()

	l := getLink(t, "orphaned")
	patch := client.MergeFrom(l.DeepCopy())
	l.Finalizers = nil
	if err := west.Client.Patch(ctxT(t), l, patch); err != nil {
		t.Fatal(err)
	}
	deleteLink(t, "orphaned")
	if n := ownedCount(t, "orphaned"); n != 6 {
		t.Fatalf("%d objects before restart, want the 6 orphans", n)
	}
	startImporter(t, feeds, &fakeProber{})
	testkit.Eventually(t, "orphans removed", func() bool { return ownedCount(t, "orphaned") == 0 })
}

// TestRestartWhileRemoteDown: a controller that starts while the remote is
// unreachable keeps the mirrors (it rebuilds its copy from them), turns
// their endpoints not-ready after the probe threshold, and converges when
// the remote returns, without deleting anything.
func TestRestartWhileRemoteDown(t *testing.T) {
	if err := west.EnsureNamespace(ctxT(t), "cold"); err != nil {
		t.Fatal(err)
	}
	feed := newFakeFeed(manyExports("cold", 3)...)
	feeds := map[string]*fakeFeed{"east-gw:4143": feed}
	first := startImporter(t, feeds, &fakeProber{})
	createLink(t, newLink("cold-start", "east-gw:4143"))
	settle(t, "cold-start", 3)
	first.stop()

	feed.SetUp(false)
	prober := &fakeProber{down: true}
	second := startImporter(t, feeds, prober)
	t.Cleanup(func() { deleteLink(t, "cold-start") })
	testkit.Eventually(t, "not ready after the threshold", func() bool { return allReady(getSlice(t, "cold", "svc-0002-east"), false) })
	if n := ownedCount(t, "cold-start"); n != 6 {
		t.Fatalf("%d objects, want the 6 mirrors and slices kept", n)
	}
	feed.SetUp(true)
	prober.SetDown(false)
	testkit.Eventually(t, "ready again", func() bool { return allReady(getSlice(t, "cold", "svc-0002-east"), true) })
	settle(t, "cold-start", 3)
	got := objectWrites(second.writes.Snapshot())
	if got["delete Service"]+got["delete EndpointSlice"]+got["create Service"] != 0 || got["update EndpointSlice"] != 6 {
		t.Errorf("writes %v: want only the 3 slices turned not-ready and back", got)
	}
}

// TestIdleMakesNoWrites: with heartbeats and probes running and nothing
// changing, the importer writes nothing.
func TestIdleMakesNoWrites(t *testing.T) {
	if err := west.EnsureNamespace(ctxT(t), "idle"); err != nil {
		t.Fatal(err)
	}
	prober := &fakeProber{}
	h := startImporter(t, map[string]*fakeFeed{"east-gw:4143": newFakeFeed(manyExports("idle", 10)...)}, prober)
	createLink(t, newLink("idle", "east-gw:4143"))
	t.Cleanup(func() { deleteLink(t, "idle") })
	settle(t, "idle", 10)
	before := h.writes.Snapshot()
	prober.mu.Lock()
	probes := prober.n
	prober.mu.Unlock()
	time.Sleep(3 * time.Second) // 60 heartbeats, 30 probes
	prober.mu.Lock()
	probes = prober.n - probes
	prober.mu.Unlock()
	if got := h.writes.Since(before); len(got) != 0 || probes < 10 {
		t.Fatalf("idle: %v writes over %d probes; want none", got, probes)
	}
}
