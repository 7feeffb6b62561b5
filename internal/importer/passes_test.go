package importer_test

import (
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/importer"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// passes counts the importer's passes of a mode ("full" or "scoped").
func (h *harness) passes(t testing.TB, mode string) uint64 {
	t.Helper()
	return testkit.HistogramCount(t, h.registry, "ferry_importer_pass_duration_seconds", "mode", mode)
}

func withConsistency(d time.Duration) harnessOption {
	return func(o *importer.Options) { o.ConsistencyInterval = d }
}

// claimsOf returns the Link's port claims, by port.
func claimsOf(t testing.TB, link string) map[int32]claims.Claim {
	t.Helper()
	snap, err := claims.Read(ctxT(t), west.Client, contract.SystemNamespace)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]claims.Claim{}
	for p, c := range snap.Table {
		if c.Owner == claims.LinkOwner(link) {
			out[p] = c
		}
	}
	return out
}

// TestChangesAreScoped: once a Link has synced, feed updates recompute only
// the exports they name: no full pass runs, only those exports' objects
// and claims are written, and a full pass afterwards finds nothing to
// change (the scoped passes left exactly what a full one wants).
func TestChangesAreScoped(t *testing.T) {
	const ns = "scoped"
	if err := west.EnsureNamespace(ctxT(t), ns); err != nil {
		t.Fatal(err)
	}
	feed := newFakeFeed(manyExports(ns, 30)...)
	h := startImporter(t, map[string]*fakeFeed{"east-gw:4143": feed}, &fakeProber{}, withConsistency(time.Hour))
	createLink(t, newLink("scoped", "east-gw:4143"))
	t.Cleanup(func() { deleteLink(t, "scoped") })
	settle(t, "scoped", 30)

	fullBefore, scopedBefore := h.passes(t, "full"), h.passes(t, "scoped")
	claimsBefore := claimsOf(t, "scoped")
	writesBefore := h.writes.Snapshot()
	feed.Set(export(ns, "svc-0001", 81))
	feed.Set(export(ns, "new", 80))
	feed.Delete(exports.Key{Namespace: ns, Name: "svc-0002"})
	testkit.Eventually(t, "the three changes mirrored", func() bool {
		changed := getService(t, ns, "svc-0001-east")
		return changed != nil && changed.Spec.Ports[0].Port == 81 && getService(t, ns, "new-east") != nil &&
			getService(t, ns, "svc-0002-east") == nil && getSlice(t, ns, "svc-0002-east") == nil
	})
	settle(t, "scoped", 30)

	if got := h.passes(t, "full"); got != fullBefore {
		t.Errorf("full passes went from %d to %d; feed updates must recompute only their exports", fullBefore, got)
	}
	if h.passes(t, "scoped") == scopedBefore {
		t.Error("no scoped pass counted")
	}
	got := objectWrites(h.writes.Since(writesBefore))
	if got["update Service"] != 1 || got["create Service"] != 1 || got["delete Service"] != 1 ||
		got["create EndpointSlice"] != 1 || got["delete EndpointSlice"] != 1 || got["update EndpointSlice"] > 1 {
		t.Errorf("writes %v; want only the three exports' objects", got)
	}
	// Only the three exports' claims changed.
	after := claimsOf(t, "scoped")
	touched := map[string]bool{"svc-0001-east": true, "new-east": true, "svc-0002-east": true}
	for p, c := range claimsBefore {
		if !touched[c.Service] && after[p] != c {
			t.Errorf("claim of port %d (%s) changed to %+v by a pass that was not about it", p, c, after[p])
		}
	}
	for p, c := range after {
		if !touched[c.Service] && claimsBefore[p] != c {
			t.Errorf("claim of port %d (%s) appeared in a pass that was not about it", p, c)
		}
	}
	if n := len(after); n != 30 {
		t.Errorf("%d claims after the changes; want 30 (one per export)", n)
	}

	// A namespace event asks every Link for a full pass: it must agree.
	writesBefore = h.writes.Snapshot()
	if err := west.EnsureNamespace(ctxT(t), "scoped-wake"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "a full pass", func() bool { return h.passes(t, "full") > fullBefore })
	time.Sleep(300 * time.Millisecond)
	if w := h.writes.Since(writesBefore); len(w) != 0 || !maps.Equal(claimsOf(t, "scoped"), after) {
		t.Errorf("the full pass after scoped ones wrote %v; want nothing", w)
	}
}

// TestConsistencyCheckRepairsWhatNoEventReports: a claim removed behind the
// importer's back wakes the Link with nothing pending, so no scoped pass
// restores it; the periodic full pass does, with the same port, and
// writes nothing else.
func TestConsistencyCheckRepairsWhatNoEventReports(t *testing.T) {
	const ns = "consistency"
	if err := west.EnsureNamespace(ctxT(t), ns); err != nil {
		t.Fatal(err)
	}
	feed := newFakeFeed(manyExports(ns, 5)...)
	h := startImporter(t, map[string]*fakeFeed{"east-gw:4143": feed}, &fakeProber{}, withConsistency(time.Second))
	createLink(t, newLink("consistency", "east-gw:4143"))
	t.Cleanup(func() { deleteLink(t, "consistency") })
	settle(t, "consistency", 5)

	var port int32
	for p, c := range claimsOf(t, "consistency") {
		if c.Service == "svc-0000-east" {
			port = p
		}
	}
	if port == 0 {
		t.Fatal("svc-0000-east holds no claim")
	}
	var cm corev1.ConfigMap
	if err := west.Client.Get(ctxT(t), types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.PortClaimsName(contract.PortClaimsShardOf(port))}, &cm); err != nil {
		t.Fatal(err)
	}
	shard, err := claims.Decode(contract.PortClaimsShardOf(port), cm.Data[contract.PortClaimsKey])
	if err != nil {
		t.Fatal(err)
	}
	delete(shard, port)
	cm.Data[contract.PortClaimsKey] = claims.Encode(shard)
	full := h.passes(t, "full")
	writesBefore := h.writes.Snapshot()
	if err := west.Client.Update(ctxT(t), &cm); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the claim restored by a full pass", func() bool {
		c, ok := claimsOf(t, "consistency")[port]
		return ok && c.Service == "svc-0000-east" && h.passes(t, "full") > full
	})
	w := h.writes.Since(writesBefore)
	delete(w, "update ConfigMap")
	if len(w) != 0 {
		t.Errorf("the repair wrote %v besides the claim; want nothing", w)
	}
}
