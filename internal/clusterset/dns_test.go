package clusterset_test

import (
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/tooling/testkit"
)

// The clusterset objects Ferry writes are what real CoreDNS (its kubernetes
// plugin with multicluster clusterset.local) needs to serve the MCS DNS
// specification: the name resolves to the ServiceImport's IP, each port has
// its SRV record, the version record answers, and the per-cluster form of
// a ClusterSetIP service is NXDOMAIN. Tested against the real plugin, not a
// reading of its code.
func TestClustersetServicesResolveThroughCoreDNS(t *testing.T) {
	west := shared.Get(t).Cluster("west")
	ctx := t.Context()
	ensureGateway(t, west)
	ns := west.TestNamespace(t, "dns")
	startClusterset(t, west)
	mk := &mirrorMaker{c: west, ns: ns, next: 43000}
	mk.add(t, "echo", "east", true, 80, 443)
	mk.add(t, "echo", "north", true, 80)

	var si mcsv1beta1.ServiceImport
	testkit.Eventually(t, "the ServiceImport with its IP", func() bool {
		return west.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "echo"}, &si) == nil && len(si.Spec.IPs) == 1
	})
	dns, err := west.StartCoreDNS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Stop()
	r := dns.Resolver()
	name := "echo." + ns + ".svc.clusterset.local"

	var addrs []string
	testkit.Eventually(t, name+" resolving", func() bool {
		addrs, err = r.LookupHost(ctx, name)
		return err == nil
	})
	if !slices.Equal(addrs, si.Spec.IPs) {
		t.Errorf("%s: %v, want the ServiceImport's IPs %v", name, addrs, si.Spec.IPs)
	}
	for _, p := range []struct {
		name string
		port uint16
	}{{"p80", 80}, {"p443", 443}} {
		_, srvs, err := r.LookupSRV(ctx, p.name, "tcp", name)
		if err != nil || len(srvs) != 1 || srvs[0].Port != p.port || !strings.HasPrefix(srvs[0].Target, name) {
			t.Errorf("SRV _%s._tcp.%s: %+v, %v; want port %d at %s", p.name, name, srvs, err, p.port, name)
		}
	}
	if txt, err := r.LookupTXT(ctx, "dns-version.clusterset.local"); err != nil || len(txt) != 1 || txt[0] != "1.1.0" {
		t.Errorf("dns-version.clusterset.local: %v, %v", txt, err)
	}
	// <cluster>.<svc>.<ns>.svc.clusterset.local is reserved for headless
	// services' per-pod names: a ClusterSetIP service has none.
	_, err = r.LookupHost(ctx, "east."+name)
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("east.%s: %v, want NXDOMAIN", name, err)
	}
	t.Logf("CoreDNS %s: %s -> %v; SRV per port; dns-version 1.1.0; east.%s NXDOMAIN", dns.Addr, name, addrs, name)
}
