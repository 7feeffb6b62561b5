package slim

import (
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// decoded returns a Service as a decoder gives it: every string its own
// copy.
func decoded(name string) *corev1.Service {
	c := func(s string) string { return string([]byte(s)) }
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{
		Name: c(name), Namespace: c("apps"),
		Labels:        map[string]string{c("ferry.dev/link"): c("east"), c("ferry.dev/source-cluster"): c("east")},
		Annotations:   map[string]string{c("ferry.dev/remote-service"): c(name)},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "ferry"}},
	}}
}

func data(s string) *byte { return unsafe.StringData(s) }

func TestMetadataSharesStringsAndKeepsValues(t *testing.T) {
	a, b := decoded("web"), decoded("db")
	wantA := a.DeepCopy()
	wantA.ManagedFields = nil
	if _, err := Transform(a); err != nil {
		t.Fatal(err)
	}
	Metadata(b)
	if !apiequality.Semantic.DeepEqual(a, wantA) {
		t.Fatalf("Metadata changed what the object says:\n got %+v\nwant %+v", a.ObjectMeta, wantA.ObjectMeta)
	}
	if a.ManagedFields != nil || b.ManagedFields != nil {
		t.Fatal("managed fields kept")
	}
	if data(a.Labels["ferry.dev/link"]) != data(b.Labels["ferry.dev/link"]) {
		t.Error("equal label values are not one copy")
	}
	if data(a.Namespace) != data(b.Namespace) {
		t.Error("equal namespaces are not one copy")
	}
	for k := range a.Annotations {
		for k2 := range b.Annotations {
			if data(k) != data(k2) {
				t.Error("equal annotation keys are not one copy")
			}
		}
	}
}

func TestTransformPassesOtherValues(t *testing.T) {
	tomb := "a tombstone"
	got, err := Transform(tomb)
	if err != nil || got != tomb {
		t.Fatalf("Transform(%v) = %v, %v", tomb, got, err)
	}
	var empty corev1.Service
	Metadata(&empty)
	if empty.Labels != nil || empty.Annotations != nil || empty.Namespace != "" {
		t.Fatalf("Metadata filled an empty object: %+v", empty.ObjectMeta)
	}
}
