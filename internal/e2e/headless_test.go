package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/netns"
	"ferry.dev/ferry/internal/tooling/sandbox"
)

// A StatefulSet in east is reached pod by pod from west, by name, through
// both gateways: web-1's names lead to web-1 and to no other pod, every
// time, as the bytes each pod answers with show; the service's name gives
// every pod's address. When web-1 turns
// not-ready its name stops resolving or its connections are refused, and
// when it is ready again it is back. Scaling up names the new pod, and
// scaling down takes the removed pods' names away.
func TestStatefulSetPodsReachableByName(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	web, err := east.StatefulSet(ctx, ns, "web", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer web.Stop()
	if err := east.Export(ctx, ns, "web"); err != nil {
		t.Fatal(err)
	}
	names := []string{
		"web-1.east.web." + ns + ".svc.clusterset.local",
		"web-1.web-east." + ns + ".svc.cluster.local",
	}
	for _, name := range names {
		waitReply(ctx, t, name, "east/web-1: ")
		for i := range 20 {
			reply, err := west.RequestName(ctx, name, 80, "which pod")
			if err != nil || !strings.HasPrefix(reply, "east/web-1: ") {
				t.Fatalf("request %d to %s: %q, %v; want web-1 every time", i, name, reply, err)
			}
		}
	}
	// Each pod has its own name, and the service's name gives every pod's
	// address.
	var hostIPs []string
	for i := range 3 {
		pod := fmt.Sprintf("web-%d", i)
		waitReply(ctx, t, pod+".east.web."+ns+".svc.clusterset.local", "east/"+pod+": ")
		var s corev1.Service
		if err := west.API.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: contract.HostMirrorName("web", "east", pod)}, &s); err != nil {
			t.Fatal(err)
		}
		hostIPs = append(hostIPs, s.Spec.ClusterIP)
	}
	all := "web." + ns + ".svc.clusterset.local"
	addrs, err := west.DNS.Resolver().LookupHost(ctx, all)
	slices.Sort(addrs)
	slices.Sort(hostIPs)
	if err != nil || !slices.Equal(addrs, hostIPs) {
		t.Errorf("%s: %v, %v; want the three pods' addresses %v", all, addrs, err, hostIPs)
	}
	// In east, which exports it, the same names lead to its own pods
	// directly, at their own addresses: the clusterset includes the
	// exporting cluster.
	var local []string
	own := slices.Sorted(slices.Values(web.Pods))
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		local, _ = east.DNS.Resolver().LookupHost(ctx, all)
		slices.Sort(local)
		return slices.Equal(local, own), nil
	})
	if err != nil {
		t.Errorf("in east, %s: %v; want east's own pods %v\nCoreDNS log:\n%s", all, local, own, east.DNS.LogTail(30))
	}
	if reply, err := east.RequestName(ctx, names[0], sandbox.EchoPort, "from east"); err != nil || !strings.HasPrefix(reply, "east/web-1: ") {
		t.Errorf("in east, %s: %q, %v; want web-1 itself", names[0], reply, err)
	}

	start := time.Now()
	if err := web.SetReady(ctx, 1, false); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		waitUnreachable(ctx, t, name, "east/web-1: ")
	}
	gone := time.Since(start)
	if err := web.SetReady(ctx, 1, true); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	for _, name := range names {
		waitReply(ctx, t, name, "east/web-1: ")
	}
	back := time.Since(start)

	// Scaling up names the new pod in west; scaling down takes the
	// removed pods' names away, and leaves the others.
	start = time.Now()
	if err := web.ScaleTo(ctx, 4); err != nil {
		t.Fatal(err)
	}
	waitReply(ctx, t, "web-3.east.web."+ns+".svc.clusterset.local", "east/web-3: ")
	up := time.Since(start)
	start = time.Now()
	if err := web.ScaleTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for _, pod := range []string{"web-2", "web-3"} {
		// The pods stop only after they left the slice, so the name going
		// away is what this measures, not a refused connection.
		waitNoName(ctx, t, pod+".east.web."+ns+".svc.clusterset.local")
	}
	down := time.Since(start)
	waitReply(ctx, t, names[0], "east/web-1: ")
	t.Logf("web-1 by name: 20/20 to web-1 through each name; not-ready -> unreachable by both names in %v, ready -> back in %v; "+
		"scaled 3 -> 4: web-3 by name in %v; 4 -> 2: web-2 and web-3 gone in %v",
		gone.Round(time.Millisecond), back.Round(time.Millisecond), up.Round(time.Millisecond), down.Round(time.Millisecond))
}

// waitNoName waits until west's CoreDNS answers NXDOMAIN for name.
func waitNoName(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, last = west.DNS.Resolver().LookupHost(ctx, name)
		var dnsErr *net.DNSError
		return errors.As(last, &dnsErr) && dnsErr.IsNotFound, nil
	})
	if err != nil {
		t.Fatalf("%s: no NXDOMAIN 30 s on (last: %v)", name, last)
	}
}

// waitUnreachable waits until a request to name fails, and fails the test
// if a pod other than the one whose reply starts with prefix answers first.
func waitUnreachable(ctx context.Context, t *testing.T, name, prefix string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		reply, err := west.RequestName(ctx, name, 80, "still there?")
		if err == nil && !strings.HasPrefix(reply, prefix) {
			return false, errors.New(name + " reached another pod: " + reply)
		}
		return err != nil, nil
	})
	if err != nil {
		t.Fatalf("%s: still reachable 30 s on, or worse: %v", name, err)
	}
}

// waitReply waits until a request to name gets a reply that starts with
// prefix, and fails the test if a reply from anyone else comes first.
func waitReply(ctx context.Context, t *testing.T, name, prefix string) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		reply, err := west.RequestName(ctx, name, 80, "hello")
		if err != nil {
			last = err
			return false, nil
		}
		if !strings.HasPrefix(reply, prefix) {
			return false, errors.New(name + " answered by " + reply)
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%s: %v (last error: %v)\nCoreDNS log:\n%s", name, err, last, west.DNS.LogTail(30))
	}
}
