package exportwatch

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/tooling/testenv"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// shared is one cluster for this package's tests, started on first use.
var shared = testenv.Lazy{Options: testenv.Options{Clusters: []string{"east"}, CRDs: testenv.MCSCRDs()}}

func TestMain(m *testing.M) { shared.Main(m) }

// startWatcher runs a Watcher on the shared cluster, scoped to ns, and
// waits for its first synced set.
func startWatcher(t *testing.T, ns string) *Watcher {
	t.Helper()
	w, err := NewWatcher(shared.Get(t).Cluster("east").RestConfig, WatcherOptions{Logger: testkit.Logger(), Namespaces: []string{ns}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watcher: %v", err)
		}
	})
	waitSet(t, w, "synced", func(s *exports.Set) bool { return s.Synced })
	return w
}

// waitSet waits until cond holds for the watcher's current set.
func waitSet(t *testing.T, w *Watcher, what string, cond func(*exports.Set) bool) *exports.Set {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s := w.Current()
		if cond(s) {
			return s
		}
		select {
		case <-s.Changed():
		case <-deadline:
			t.Fatalf("timed out waiting for %s; set %+v", what, s)
		}
	}
}

func createExport(t *testing.T, ctx context.Context, ns, name string, annotations map[string]string) {
	t.Helper()
	c := shared.Get(t).Cluster("east")
	se := &mcsv1beta1.ServiceExport{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec:       mcsv1beta1.ServiceExportSpec{ExportedLabels: map[string]string{"team": "a"}},
	}
	if err := c.Client.Create(ctx, se); err != nil {
		t.Fatal(err)
	}
}

func TestWatcherFollowsTheAPIServer(t *testing.T) {
	ctx := t.Context()
	c := shared.Get(t).Cluster("east")
	const ns = "watch"
	if _, err := c.CreateBackend(ctx, testenv.Backend{Namespace: ns, Name: "web", Headless: true, Endpoints: []testenv.Endpoint{
		{IP: "198.18.0.10", Port: 8080, Ready: true, Hostname: "web-0"},
		{IP: "198.18.0.11", Port: 8080, Ready: false, Hostname: "web-1"},
	}}); err != nil {
		t.Fatal(err)
	}
	w := startWatcher(t, ns)
	k := exports.Key{Namespace: ns, Name: "web"}
	if w.Current().Len() != 0 {
		t.Fatalf("export without a ServiceExport: %v", w.Current().Map())
	}

	createExport(t, ctx, ns, "web", map[string]string{contract.AnnotationAllowedClusters: "west"})
	s := waitSet(t, w, "export", func(s *exports.Set) bool { _, ok := s.Export(k); return ok })
	e, _ := s.Export(k)
	if e.Type != exports.Headless || e.ReadyEndpoints != 1 || len(e.Hostnames) != 1 || e.Hostnames[0] != "web-0" ||
		len(e.Ports) != 1 || e.Ports[0].Port != 80 || e.Labels["team"] != "a" || len(e.AllowedClusters) != 1 || e.Created.IsZero() {
		t.Fatalf("export %+v", e)
	}

	// Endpoint readiness reaches the set.
	if err := c.SetEndpoints(ctx, ns, "web", []testenv.Endpoint{
		{IP: "198.18.0.10", Port: 8080, Ready: true, Hostname: "web-0"},
		{IP: "198.18.0.11", Port: 8080, Ready: true, Hostname: "web-1"},
	}); err != nil {
		t.Fatal(err)
	}
	waitSet(t, w, "two ready", func(s *exports.Set) bool {
		return exportOf(s, k).ReadyEndpoints == 2 && len(exportOf(s, k).Hostnames) == 2
	})

	// A port change reaches the set.
	svc, err := c.Kube.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "admin", Protocol: corev1.ProtocolTCP, Port: 9000, TargetPort: intstr.FromInt32(9000)})
	if _, err := c.Kube.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSet(t, w, "two ports", func(s *exports.Set) bool { return len(exportOf(s, k).Ports) == 2 })

	// Deleting the Service invalidates the export but keeps its status.
	if err := c.Kube.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	s = waitSet(t, w, "no service", func(s *exports.Set) bool { _, ok := s.Export(k); return !ok })
	if st, _ := s.Status(k); st.Reason != exports.ReasonNoService {
		t.Fatalf("status %+v", st)
	}
	// Unexport removes the status too.
	if err := c.Client.Delete(ctx, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	waitSet(t, w, "unexported", func(s *exports.Set) bool { return len(s.StatusKeys()) == 0 })
}

// TestUnexportedChurnCostsNothing: requirement II says unrelated churn
// costs ~0 feed bytes. 200 Services (with slices) that nobody exports must
// not cause a single publish.
func TestUnexportedChurnCostsNothing(t *testing.T) {
	ctx := t.Context()
	c := shared.Get(t).Cluster("east")
	const ns = "churn"
	if _, err := c.CreateBackend(ctx, testenv.Backend{Namespace: ns, Name: "exported", Endpoints: []testenv.Endpoint{{IP: "198.18.0.20", Port: 80, Ready: true}}}); err != nil {
		t.Fatal(err)
	}
	createExport(t, ctx, ns, "exported", nil)
	w := startWatcher(t, ns)
	k := exports.Key{Namespace: ns, Name: "exported"}
	before := waitSet(t, w, "export", func(s *exports.Set) bool { return exportOf(s, k).ReadyEndpoints == 1 })

	const n = 200
	for i := range n {
		b := testenv.Backend{Namespace: ns, Name: fmt.Sprintf("noise-%d", i)}
		if i%4 == 0 {
			b.Endpoints = []testenv.Endpoint{{IP: "198.18.1.1", Port: 80, Ready: true}}
		}
		if _, err := c.CreateBackend(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i += 4 { // and churn the slices that exist
		if err := c.SetEndpoints(ctx, ns, fmt.Sprintf("noise-%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	// A sentinel change on the exported Service's slice, written last: the
	// slice informer delivers events in order, so once it is seen, every
	// noise slice event before it has been handled.
	if err := c.SetEndpoints(ctx, ns, "exported", []testenv.Endpoint{{IP: "198.18.0.20", Port: 80, Ready: true}, {IP: "198.18.0.21", Port: 80, Ready: true}}); err != nil {
		t.Fatal(err)
	}
	after := waitSet(t, w, "sentinel", func(s *exports.Set) bool { return exportOf(s, k).ReadyEndpoints == 2 })
	if after.Generation != before.Generation+1 {
		t.Fatalf("%d publishes for %d unexported Services and one real change; want exactly 1", after.Generation-before.Generation, n)
	}
	t.Logf("%d unexported Services created and churned: 0 publishes; the one real change: 1 publish", n)
}

func TestStatusWriterWritesOnlyChanges(t *testing.T) {
	ctx := t.Context()
	c := shared.Get(t).Cluster("east")
	const ns = "status"
	if _, err := c.CreateBackend(ctx, testenv.Backend{Namespace: ns, Name: "ok", Endpoints: []testenv.Endpoint{{IP: "198.18.0.30", Port: 80, Ready: true}}}); err != nil {
		t.Fatal(err)
	}
	createExport(t, ctx, ns, "ok", nil)
	createExport(t, ctx, ns, "missing", nil)
	w := startWatcher(t, ns)
	set := waitSet(t, w, "statuses", func(s *exports.Set) bool { return len(s.StatusKeys()) == 2 })

	sw := &StatusWriter{Source: w, Reader: w.Reader(), Client: c.Client, LocalCluster: "east", Logger: testkit.Logger()}
	n, err := sw.Sync(ctx, set)
	if err != nil || n != 2 {
		t.Fatalf("first sync: %d writes, %v", n, err)
	}
	// Wait for the cache to see our writes, then a sync must write nothing.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := &mcsv1beta1.ServiceExport{}
		if err := w.Reader().Get(ctx, clientKey(ns, "missing"), got); err != nil {
			t.Fatal(err)
		}
		if len(got.Status.Conditions) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cache never saw the status")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let "ok" arrive as well
	if n, err := sw.Sync(ctx, w.Current()); err != nil || n != 0 {
		t.Fatalf("idle sync: %d writes, %v; want 0", n, err)
	}
	got := &mcsv1beta1.ServiceExport{}
	if err := c.Client.Get(ctx, clientKey(ns, "missing"), got); err != nil {
		t.Fatal(err)
	}
	for _, cond := range got.Status.Conditions {
		if cond.Type == ConditionValid && (cond.Status != metav1.ConditionFalse || cond.Reason != exports.ReasonNoService) {
			t.Fatalf("Valid: %+v", cond)
		}
	}
}

func clientKey(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }

func exportOf(s *exports.Set, k exports.Key) exports.Export {
	e, _ := s.Export(k)
	return e
}
