package clusterset

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/writer"
)

// TestImportReadyCondition: a condition's time is kept while its status
// holds, a change of status is written with the pass's time, and a change
// of time alone writes nothing.
func TestImportReadyCondition(t *testing.T) {
	in := Input{Ports: contract.DefaultClustersetRange(), Gateway: gw, Mirrors: []*corev1.Service{mirrorOf("east", port("http", 80))}}
	st := Desired(in)
	st.Now = metav1.NewTime(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	earlier := metav1.NewTime(st.Now.Add(-time.Hour))
	if got := conditionOf(st.Imports[0]); got != "False/Pending" {
		t.Fatalf("an import whose Service has no ClusterIP yet is %s, want False/Pending", got)
	}
	have := func(c metav1.Condition) Objects {
		si := st.Imports[0].DeepCopy()
		si.Status.Conditions = []metav1.Condition{c}
		return Objects{Imports: []*mcsv1beta1.ServiceImport{si}, Services: st.Services, Slices: st.Slices}
	}
	pending := st.Imports[0].Status.Conditions[0]

	// The same condition, written an hour ago: nothing to write.
	old := pending
	old.LastTransitionTime = earlier
	if ops := Diff(st, have(old)); len(ops) != 0 {
		t.Fatalf("an unchanged condition writes %d ops", len(ops))
	}
	// It was ready; now it is pending: a status write, at the pass's time.
	ready := metav1.Condition{Type: conditionReady, Status: metav1.ConditionTrue, Reason: "Ready", LastTransitionTime: earlier}
	ops := Diff(st, have(ready))
	if len(ops) != 1 || ops[0].Verb != writer.UpdateStatus {
		t.Fatalf("ops %+v, want one status update", ops)
	}
	c := ops[0].Object.(*mcsv1beta1.ServiceImport).Status.Conditions
	if len(c) != 1 || c[0].Reason != pending.Reason || !c[0].LastTransitionTime.Equal(&st.Now) {
		t.Fatalf("written condition %+v, want %s at %s", c, pending.Reason, st.Now)
	}
	// It was exhausted (False too): the reason changes, the time does not.
	exhausted := exhaustedCondition(in.Ports, 1)
	exhausted.LastTransitionTime = earlier
	c = Diff(st, have(exhausted))[0].Object.(*mcsv1beta1.ServiceImport).Status.Conditions
	if c[0].Reason != pending.Reason || !c[0].LastTransitionTime.Equal(&earlier) {
		t.Fatalf("written condition %+v, want %s still at %s", c, pending.Reason, earlier)
	}
	// A new import is created with its condition timed.
	created := Diff(st, Objects{})
	for _, op := range created {
		if si, ok := op.Object.(*mcsv1beta1.ServiceImport); ok {
			if !op.Status || si.Status.Conditions[0].LastTransitionTime.IsZero() {
				t.Fatalf("created import %+v (status written: %v)", si.Status, op.Status)
			}
		}
	}
}
