package gatewayd

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/gateway"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testenv"
	"ferry.dev/ferry/internal/tooling/testkit"
	"ferry.dev/ferry/internal/tunnel"
)

// createPod writes a pod and then its status, as the scheduler and kubelet
// would: running at ip.
func createPod(t *testing.T, kube kubernetes.Interface, ns, name, ip string, hostNetwork bool, phase corev1.PodPhase) {
	t.Helper()
	ctx := t.Context()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{HostNetwork: hostNetwork, NodeName: "node-1",
			Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
	}
	p, err := kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status = corev1.PodStatus{Phase: phase, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if _, err := kube.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func annotate(t *testing.T, kube kubernetes.Interface, ns, value string) {
	t.Helper()
	patch := `{"metadata":{"annotations":{"` + contract.AnnotationEgressCallers + `":` + strconv.Quote(value) + `}}}`
	if _, err := kube.CoreV1().Namespaces().Patch(t.Context(), ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// The gateway's caller policy against a real API server, through a real
// egress port on loopback: a pod in namespace "a" reaching a mirror's port
// in "b" is refused, a pod in "b" is let through, and b's annotation
// widens (and, when invalid, narrows back) who may.
func TestCallersFollowPodsAndNamespaces(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	env, err := testenv.Start(ctx, testenv.Options{Clusters: []string{"west"}})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	c := env.Clusters[0]
	for _, ns := range []string{"a", "b"} {
		if err := c.EnsureNamespace(ctx, ns); err != nil {
			t.Fatal(err)
		}
		// kube-controller-manager's service account controller would.
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}
		if _, err := c.Kube.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Loopback addresses stand for pod IPs, so that the egress port sees
	// them as the callers' addresses.
	createPod(t, c.Kube, "a", "client-a", "127.0.0.2", false, corev1.PodRunning)
	createPod(t, c.Kube, "b", "client-b", "127.0.0.3", false, corev1.PodRunning)
	createPod(t, c.Kube, "b", "host-b", "127.0.0.4", true, corev1.PodRunning)
	createPod(t, c.Kube, "b", "done-b", "127.0.0.5", false, corev1.PodSucceeded)

	pol, err := newCallers(c.Kube, []netip.Prefix{netip.MustParsePrefix("127.0.0.6/32")}, testkit.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if got := pol.Refuse(netip.MustParseAddr("127.0.0.3"), "b"); got != gateway.ReasonCallerNotSynced {
		t.Errorf("before the caches run: %q, want %q", got, gateway.ReasonCallerNotSynced)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- pol.Run(runCtx) }()
	defer func() { stop(); <-done }()
	testkit.Eventually(t, "caches synced", func() bool { return pol.Synced() == nil })

	// A mirror's egress port in namespace b, on a real egress. No remote
	// answers, so an admitted caller's connection fails later, as
	// "unknown_remote"; a refused one never gets that far.
	m := identitytest.NewMesh(t, "", "west", "east")
	metrics, err := gateway.NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	lim := gateway.DefaultLimits()
	eg, err := gateway.NewEgress(ctx, gateway.EgressOptions{
		TLS: m.Cluster(t, "west").Gateway, ListenHost: "127.0.0.1", Callers: pol,
		Limits: lim, Metrics: metrics, Logger: testkit.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = eg.Shutdown(context.Background()) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if err := eg.SetRoutes([]gateway.Route{{Port: port, Namespace: "b", Destinations: []gateway.Destination{
		{Cluster: "east", Target: tunnel.Target{Namespace: "b", Service: "db", Port: 5432}},
	}}}); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	refused := func(reason string) float64 {
		return testutil.ToFloat64(metrics.EgressCallersRefused.WithLabelValues(reason, string(gateway.CallerEnforce)))
	}
	admitted := func() float64 {
		return testutil.ToFloat64(metrics.EgressFailed.WithLabelValues("east", gateway.ReasonUnknownRemote))
	}
	// call dials the mirror's port from ip and waits for the gateway to
	// end the connection (every one ends: refused, or no remote).
	call := func(ip string) {
		t.Helper()
		d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return // reset before the dial returned: refused at once
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if n, err := conn.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Fatalf("from %s: read %d bytes, %v", ip, n, err)
		}
	}
	expect := func(ip, reason string) {
		t.Helper()
		before, beforeAdmitted := refused(reason), admitted()
		call(ip)
		if reason == "" {
			if admitted() != beforeAdmitted+1 {
				t.Errorf("from %s: not admitted (refusals: %v namespace, %v not pod)", ip, refused(gateway.ReasonCallerNamespace), refused(gateway.ReasonCallerNotPod))
			}
			return
		}
		if refused(reason) != before+1 || admitted() != beforeAdmitted {
			t.Errorf("from %s: want refused as %s", ip, reason)
		}
	}

	expect("127.0.0.3", "")                            // a pod of b
	expect("127.0.0.2", gateway.ReasonCallerNamespace) // a pod of a
	expect("127.0.0.4", gateway.ReasonCallerNotPod)    // a hostNetwork pod: the node's address
	expect("127.0.0.5", gateway.ReasonCallerNotPod)    // a finished pod's old address
	expect("127.0.0.7", gateway.ReasonCallerNotPod)    // no pod at all
	expect("127.0.0.6", "")                            // --egress-host-callers
	expect("127.0.0.1", gateway.ReasonCallerNotPod)    // the gateway's own host

	// b lets a in.
	annotate(t, c.Kube, "b", "a")
	testkit.Eventually(t, "a's pods allowed into b", func() bool { return pol.Refuse(netip.MustParseAddr("127.0.0.2"), "b") == "" })
	expect("127.0.0.2", "")
	// An invalid value fails closed: b's imports are b's again.
	annotate(t, c.Kube, "b", "a,*")
	testkit.Eventually(t, "an invalid annotation narrows b again", func() bool {
		return pol.Refuse(netip.MustParseAddr("127.0.0.2"), "b") == gateway.ReasonCallerNamespace
	})
	expect("127.0.0.2", gateway.ReasonCallerNamespace)
	annotate(t, c.Kube, "b", "*")
	testkit.Eventually(t, "* lets every namespace in", func() bool { return pol.Refuse(netip.MustParseAddr("127.0.0.2"), "b") == "" })

	// A deleted pod's address is no pod's any more.
	if err := c.Kube.CoreV1().Pods("b").Delete(ctx, "client-b", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the deleted pod forgotten", func() bool {
		return pol.Refuse(netip.MustParseAddr("127.0.0.3"), "b") == gateway.ReasonCallerNotPod
	})
}
