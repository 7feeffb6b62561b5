package clusterset_test

import (
	"errors"
	"net"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/mirror"
	"ferry.dev/ferry/internal/tooling/testenv"
	"ferry.dev/ferry/internal/tooling/testkit"
	"ferry.dev/ferry/internal/writer"
)

// importLink writes what the importer writes for one Link, with the
// importer's own pure functions (mirror.Desired, mirror.Diff) and claims,
// until nothing is left to write: a host mirror's address enters its
// headless mirror's slice only once the API server has assigned it.
func importLink(t *testing.T, c *testenv.Cluster, link mirror.Link, es ...exports.Export) {
	t.Helper()
	ctx := t.Context()
	w := &writer.Writer{Client: c.Client}
	owned := client.MatchingLabels{contract.LabelLink: link.Name}
	for pass := 0; ; pass++ {
		var svcs corev1.ServiceList
		var sls discoveryv1.EndpointSliceList
		if err := c.Client.List(ctx, &svcs, owned); err != nil {
			t.Fatal(err)
		}
		if err := c.Client.List(ctx, &sls, owned); err != nil {
			t.Fatal(err)
		}
		snap, err := claims.Read(ctx, c.Client, contract.SystemNamespace)
		if err != nil {
			t.Fatal(err)
		}
		taken, claimed := claims.Split(snap, claims.LinkOwner(link.Name))
		st := mirror.Desired(mirror.Input{
			Link: link, Exports: es, Gateway: gatewayIPs, Health: mirror.Healthy,
			Owned: mirror.Objects{Services: ptrs(svcs.Items), Slices: ptrs(sls.Items)},
			Ports: contract.Range{Min: 44000, Max: 44999}, Taken: taken, Claimed: claimed,
		})
		if len(st.Problems) > 0 {
			t.Fatalf("import problems: %+v", st.Problems)
		}
		set := map[int32]claims.Claim{}
		for k, p := range st.Ports {
			set[p] = claims.Claim{Owner: claims.LinkOwner(link.Name), Namespace: k.Namespace, Service: k.Service, Port: k.Port}
		}
		commitClaims(t, c.Client, claims.Change{Set: set})
		ops := mirror.Diff(st, mirror.Objects{Services: ptrs(svcs.Items), Slices: ptrs(sls.Items)})
		if len(ops) == 0 {
			return
		}
		if pass == 3 {
			t.Fatalf("still writing after %d passes: %v", pass, ops)
		}
		if err := w.Apply(ctx, ops); err != nil {
			t.Fatal(err)
		}
	}
}

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// A StatefulSet exported by east is named pod by pod in west, through the
// objects the importer and the clusterset reconciler write, as real CoreDNS
// reads them: each pod under cluster.local (the headless mirror) and under
// clusterset.local (the MCS EndpointSlices), at its own host mirror's
// address; the service name gives every pod.
func TestHeadlessPodsResolveThroughCoreDNS(t *testing.T) {
	west := shared.Get(t).Cluster("west")
	ctx := t.Context()
	ensureGateway(t, west)
	ns := west.TestNamespace(t, "dnspods")
	startClusterset(t, west)
	e := exports.TCP(ns, "web", 80)
	e.Type, e.ReadyEndpoints, e.Hostnames = exports.Headless, 3, []string{"web-0", "web-1", "web-2"}
	importLink(t, west, mirror.Link{Name: "east", Cluster: "east"}, e)

	hostIP := map[string]string{}
	for _, h := range e.Hostnames {
		var s corev1.Service
		if err := west.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: contract.HostMirrorName("web", "east", h)}, &s); err != nil {
			t.Fatal(err)
		}
		hostIP[h] = s.Spec.ClusterIP
	}
	var si mcsv1beta1.ServiceImport
	testkit.Eventually(t, "the headless ServiceImport", func() bool {
		return west.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, &si) == nil && si.Spec.Type == mcsv1beta1.Headless
	})
	if len(si.Spec.IPs) != 0 {
		t.Errorf("headless ServiceImport has IPs %v", si.Spec.IPs)
	}
	dns, err := west.StartCoreDNS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Stop()
	r := dns.Resolver()
	for _, name := range []string{
		"web-1.east.web." + ns + ".svc.clusterset.local",
		"web-1.web-east." + ns + ".svc.cluster.local",
	} {
		var addrs []string
		testkit.Eventually(t, name+" resolving", func() bool {
			addrs, err = r.LookupHost(ctx, name)
			return err == nil
		})
		if !slices.Equal(addrs, []string{hostIP["web-1"]}) {
			t.Errorf("%s: %v, want web-1's host mirror %s alone", name, addrs, hostIP["web-1"])
		}
	}
	all := []string{hostIP["web-0"], hostIP["web-1"], hostIP["web-2"]}
	slices.Sort(all)
	addrs, err := r.LookupHost(ctx, "web."+ns+".svc.clusterset.local")
	slices.Sort(addrs)
	if err != nil || !slices.Equal(addrs, all) {
		t.Errorf("web.%s.svc.clusterset.local: %v, %v; want every pod %v", ns, addrs, err, all)
	}
	// A pod that is gone from the export is gone from DNS.
	e.Hostnames, e.ReadyEndpoints = []string{"web-0", "web-2"}, 2
	importLink(t, west, mirror.Link{Name: "east", Cluster: "east"}, e)
	gone := "web-1.east.web." + ns + ".svc.clusterset.local"
	testkit.Eventually(t, gone+" NXDOMAIN", func() bool {
		_, err := r.LookupHost(ctx, gone)
		var dnsErr *net.DNSError
		return errors.As(err, &dnsErr) && dnsErr.IsNotFound
	})
	// Back: a new host mirror, a new address, under both names.
	e.Hostnames, e.ReadyEndpoints = []string{"web-0", "web-1", "web-2"}, 3
	importLink(t, west, mirror.Link{Name: "east", Cluster: "east"}, e)
	var back corev1.Service
	if err := west.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: contract.HostMirrorName("web", "east", "web-1")}, &back); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{gone, "web-1.web-east." + ns + ".svc.cluster.local"} {
		testkit.Eventually(t, name+" back", func() bool {
			addrs, err := r.LookupHost(ctx, name)
			if err != nil {
				t.Logf("%s: %v", name, err)
			}
			return err == nil && slices.Equal(addrs, []string{back.Spec.ClusterIP})
		})
	}
	t.Logf("CoreDNS %s: web-1.east.web and web-1.web-east -> %s; web -> %v", dns.Addr, hostIP["web-1"], addrs)
}
