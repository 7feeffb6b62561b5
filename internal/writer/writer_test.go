package writer_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/tooling/testenv"
	"ferry.dev/ferry/internal/writer"
)

var shared = testenv.Lazy{Options: testenv.Options{Clusters: []string{"east"}, CRDs: testenv.MCSCRDs()}}

func TestMain(m *testing.M) { shared.Main(m) }

func service(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}
}

// recorder collects what After saw.
type recorder struct {
	mu  sync.Mutex
	ops []string
}

func (r *recorder) after(op writer.Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, string(op.Verb)+" "+op.Object.GetName())
}

func TestWriterAgainstAPIServer(t *testing.T) {
	c := shared.Get(t).Cluster("east")
	ns := c.TestNamespace(t, "writer")
	ctx := t.Context()
	rec := &recorder{}
	w := writer.Writer{Client: c.Client, Concurrency: 2, After: rec.after}

	a := service(ns, "a")
	if err := w.Apply(ctx, []writer.Op{{Verb: writer.Create, Object: a}}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if a.UID == "" {
		t.Fatal("the created object was not updated with the server's answer")
	}
	if got := writer.KindOf(c.Client.Scheme(), a); got != "Service" {
		t.Errorf("KindOf = %q", got)
	}

	// A delete names the object it was given: a same-named replacement
	// (another UID) survives it.
	stale := a.DeepCopy()
	if err := c.Client.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Create(ctx, service(ns, "a")); err != nil {
		t.Fatal(err)
	}
	err := w.Apply(ctx, []writer.Op{{Verb: writer.Delete, Object: stale}})
	if err == nil || !apierrors.IsConflict(err) {
		t.Fatalf("delete of a replaced object: %v, want a UID precondition conflict", err)
	}
	if err := c.Client.Get(ctx, client.ObjectKeyFromObject(stale), &corev1.Service{}); err != nil {
		t.Fatalf("the replacement was deleted: %v", err)
	}

	// A delete of something already gone is done.
	gone := service(ns, "gone")
	gone.UID = "0b5f7d2e-0000-4000-8000-000000000000"
	if err := w.Apply(ctx, []writer.Op{{Verb: writer.Delete, Object: gone}}); err != nil {
		t.Fatalf("delete of a missing object: %v", err)
	}

	// An object already being deleted (held by someone's finalizer) is
	// not deleted again: that would be a write on every pass.
	held := service(ns, "held")
	held.Finalizers = []string{"tenant.example/hold"}
	if err := c.Client.Create(ctx, held); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Delete(ctx, held); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Get(ctx, client.ObjectKeyFromObject(held), held); err != nil || held.DeletionTimestamp == nil {
		t.Fatalf("held Service: %v, deleting=%v", err, held.DeletionTimestamp)
	}
	counted, writes := testenv.CountWrites(c.Client)
	before := writes.Snapshot()
	if err := (&writer.Writer{Client: counted}).Apply(ctx, []writer.Op{{Verb: writer.Delete, Object: held}}); err != nil {
		t.Fatal(err)
	}
	if got := writes.Since(before); len(got) != 0 {
		t.Errorf("deleting an object already being deleted wrote %v", got)
	}
	held.Finalizers = nil
	if err := c.Client.Update(ctx, held); err != nil {
		t.Fatal(err)
	}

	// Status asks for the status subresource after the spec write.
	si := &mcsv1beta1.ServiceImport{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec:       mcsv1beta1.ServiceImportSpec{Type: mcsv1beta1.ClusterSetIP, Ports: []mcsv1beta1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
		Status:     mcsv1beta1.ServiceImportStatus{Clusters: []mcsv1beta1.ClusterStatus{{Cluster: "east"}}},
	}
	if err := w.Apply(ctx, []writer.Op{{Verb: writer.Create, Object: si, Status: true}}); err != nil {
		t.Fatalf("create with status: %v", err)
	}
	var got mcsv1beta1.ServiceImport
	if err := c.Client.Get(ctx, client.ObjectKeyFromObject(si), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Clusters) != 1 || got.Status.Clusters[0].Cluster != "east" {
		t.Fatalf("status not written: %+v", got.Status)
	}
	want := []string{"create a", "delete gone", "create web", "update-status web"}
	if strings.Join(rec.ops, ",") != strings.Join(want, ",") {
		t.Errorf("After saw %v, want %v", rec.ops, want)
	}
}

func TestWriterBoundsTheErrorsItReports(t *testing.T) {
	c := shared.Get(t).Cluster("east")
	ns := c.TestNamespace(t, "writer-errors")
	var ops []writer.Op
	for range 5 {
		// An invalid name: every create is refused.
		ops = append(ops, writer.Op{Verb: writer.Create, Object: service(ns, "Not_A_Name")})
	}
	err := (&writer.Writer{Client: c.Client, MaxErrors: 2}).Apply(t.Context(), ops)
	if err == nil {
		t.Fatal("five refused creates reported no error")
	}
	if n := strings.Count(err.Error(), "create Service"); n != 2 || !strings.Contains(err.Error(), "and 3 more write errors") {
		t.Fatalf("error reports %d writes: %v; want 2 and a count of the rest", n, err)
	}
}

func TestWriterStopsWhenTheContextEnds(t *testing.T) {
	c := shared.Get(t).Cluster("east")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ops := []writer.Op{{Verb: writer.Create, Object: service("default", "never")}}
	if err := (&writer.Writer{Client: c.Client, Concurrency: 1}).Apply(ctx, ops); err == nil {
		t.Fatal("Apply on an ended context reported no error")
	}
}
