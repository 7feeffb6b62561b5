package importer_test

import (
	"slices"
	"testing"

	"k8s.io/utils/ptr"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// A StatefulSet's export is imported pod by pod (docs/headless.md): each
// host mirror's address enters the headless mirror's slice under the pod's
// hostname, without any other event than the host mirror's own creation;
// a pod that leaves the export leaves the slice, and one that comes back
// is listed again at its new host mirror's address.
func TestHeadlessImportNamesEachPod(t *testing.T) {
	ctx := ctxT(t)
	if err := west.EnsureNamespace(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	web := export("db", "web", 80)
	web.Type, web.ReadyEndpoints, web.Hostnames = exports.Headless, 2, []string{"web-0", "web-1"}
	feed := newFakeFeed(web)
	startImporter(t, map[string]*fakeFeed{"east-gw:4143": feed}, &fakeProber{})
	createLink(t, newLink("headless", "east-gw:4143"))
	t.Cleanup(func() { deleteLink(t, "headless") })

	// named is the slice's hostname -> address, when it lists exactly the
	// host mirrors of hosts at their ClusterIPs.
	named := func(hosts ...string) bool {
		sl := getSlice(t, "db", "web-east")
		if sl == nil || len(sl.Endpoints) != len(hosts) {
			return false
		}
		for i, h := range hosts {
			hs := getService(t, "db", contract.HostMirrorName("web", "east", h))
			ep := sl.Endpoints[i]
			if hs == nil || ptr.Deref(ep.Hostname, "") != h || !slices.Equal(ep.Addresses, []string{hs.Spec.ClusterIP}) {
				return false
			}
		}
		return true
	}
	testkit.Eventually(t, "web-0 and web-1 named at their host mirrors", func() bool { return named("web-0", "web-1") })
	first := getService(t, "db", contract.HostMirrorName("web", "east", "web-1")).Spec.ClusterIP

	web.Hostnames, web.ReadyEndpoints = []string{"web-0"}, 1
	feed.Set(web)
	testkit.Eventually(t, "web-1 gone", func() bool {
		return named("web-0") && getService(t, "db", contract.HostMirrorName("web", "east", "web-1")) == nil
	})
	web.Hostnames, web.ReadyEndpoints = []string{"web-0", "web-1"}, 2
	feed.Set(web)
	testkit.Eventually(t, "web-1 back", func() bool { return named("web-0", "web-1") })
	t.Logf("web-1 at %s, then at %s", first, getService(t, "db", contract.HostMirrorName("web", "east", "web-1")).Spec.ClusterIP)
}
