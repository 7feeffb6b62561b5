package exportwatch

import (
	"context"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/tooling/testkit"
)

func key(name string) exports.Key { return exports.Key{Namespace: "ns", Name: name} }

func validStatus(name string, gen int64) exports.Status {
	return exports.Status{Key: key(name), Generation: gen, Valid: true, Reason: exports.ReasonValid, Message: "Service ns/" + name + " is exported"}
}

// mapReader is a client.Reader of ServiceExports held in a map, for the
// pure StatusWriter tests and benchmarks. It copies on Get, as the
// Watcher's cache does for ServiceExports, and counts Gets.
type mapReader struct {
	ses  map[exports.Key]*mcsv1beta1.ServiceExport
	gets int
}

func (r *mapReader) Get(_ context.Context, k client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	r.gets++
	se, ok := r.ses[exports.Key{Namespace: k.Namespace, Name: k.Name}]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{Group: "multicluster.x-k8s.io", Resource: "serviceexports"}, k.Name)
	}
	se.DeepCopyInto(obj.(*mcsv1beta1.ServiceExport))
	return nil
}

func (r *mapReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return fmt.Errorf("mapReader: List is not supported")
}

// statusFixture is a Watcher (without a cache) holding n valid exports and
// a Reader whose ServiceExports already carry the conditions the
// StatusWriter wants, so that a pass writes nothing unless told.
func statusFixture(n int) (*Watcher, *StatusWriter, *mapReader) {
	w := newWatcher(nil, WatcherOptions{Logger: testkit.Logger()})
	r := &mapReader{ses: map[exports.Key]*mcsv1beta1.ServiceExport{}}
	es := map[exports.Key]exports.Export{}
	sts := map[exports.Key]exports.Status{}
	for i := range n {
		name := fmt.Sprintf("svc-%05d", i)
		e := exports.TCP("ns", name, 80)
		e.ReadyEndpoints = 1
		st := validStatus(name, 1)
		es[e.Key], sts[e.Key] = e, st
		obj := se("ns", name)
		obj.Status.Conditions, _ = MergeConditions(nil, DesiredConditions(ConditionInput{Status: st, Export: &e, LocalCluster: "east"}), metav1.Now())
		r.ses[e.Key] = obj
	}
	w.Publish(es, sts)
	sw := &StatusWriter{Source: w, Reader: r, Client: nil, LocalCluster: "east", Logger: testkit.Logger()}
	return w, sw, r
}

// toggle changes key's ready endpoints, which changes no condition.
func toggle(w *Watcher, k exports.Key) {
	cur := w.Current()
	e, _ := cur.Export(k)
	st, _ := cur.Status(k)
	e.ReadyEndpoints = 3 - e.ReadyEndpoints
	if !w.publish([]exports.Change{{Key: k, Export: &e, Status: &st}}) {
		panic("toggle published nothing")
	}
}

func TestStatusPassReadsOnlyChangedKeys(t *testing.T) {
	ctx := t.Context()
	w, sw, r := statusFixture(100)
	var p pass
	if n, err := sw.syncPass(ctx, &p, w.Current(), true); err != nil || n != 0 {
		t.Fatalf("first pass: %d writes, %v", n, err)
	}
	if r.gets != 100 {
		t.Fatalf("first pass read %d ServiceExports, want every one", r.gets)
	}
	r.gets = 0
	toggle(w, key("svc-00042"))
	toggle(w, key("svc-00007"))
	if n, err := sw.syncPass(ctx, &p, w.Current(), false); err != nil || n != 0 || r.gets != 2 {
		t.Fatalf("pass after two changes: %d writes, %v, %d reads; want 0 writes and 2 reads", n, err, r.gets)
	}

	// A Reader behind the set is read again at the next pass.
	r.gets = 0
	k := key("svc-00003")
	cur := w.Current()
	st, _ := cur.Status(k)
	st.Generation = 2
	e, _ := cur.Export(k)
	w.publish([]exports.Change{{Key: k, Export: &e, Status: &st}})
	if _, err := sw.syncPass(ctx, &p, w.Current(), false); err != nil || r.gets != 1 || fmt.Sprint(p.behind) != "[ns/svc-00003]" {
		t.Fatalf("behind: %v, %d reads, behind %v", err, r.gets, p.behind)
	}
	r.gets = 0
	toggle(w, key("svc-00050"))
	if _, err := sw.syncPass(ctx, &p, w.Current(), false); err != nil || r.gets != 2 {
		t.Fatalf("after behind: %v, %d reads; want the change and the key behind", err, r.gets)
	}

	// A Source that cannot say what changed gets a full pass.
	r.gets = 0
	sw.Source = currentOnly{w.Publisher}
	toggle(w, key("svc-00051"))
	if _, err := sw.syncPass(ctx, &p, w.Current(), false); err != nil || r.gets != 100 {
		t.Fatalf("a Source without KeysChangedSince: %v, %d reads; want every key", err, r.gets)
	}
}

// currentOnly is a SetSource that cannot say what changed.
type currentOnly struct{ src SetSource }

func (c currentOnly) Current() *exports.Set { return c.src.Current() }
