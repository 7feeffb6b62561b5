package clusterset

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
)

// A ClusterSetIP ServiceImport carries the MCS API's Ready condition:
//
//   - True, Ready: it has its clusterset IPs;
//   - False, Pending: its clusterset Service has no ClusterIP yet;
//   - False, PortsExhausted: the clusterset port range has no port left
//     for it, so it has no clusterset Service and no IPs. It is written
//     anyway: the ServiceImport is where a user of the MCS API looks, and
//     the condition says what to widen.
//
// Headless imports carry no condition yet (docs/importer.md).
const conditionReady = string(mcsv1beta1.ServiceImportConditionReady)

func readyCondition(si *mcsv1beta1.ServiceImport) metav1.Condition {
	if len(si.Spec.IPs) > 0 {
		return metav1.Condition{Type: conditionReady, Status: metav1.ConditionTrue, Reason: string(mcsv1beta1.ServiceImportReasonReady),
			Message: "clusterset IP assigned"}
	}
	return metav1.Condition{Type: conditionReady, Status: metav1.ConditionFalse, Reason: string(mcsv1beta1.ServiceImportReasonPending),
		Message: "waiting for the clusterset Service's ClusterIP"}
}

func exhaustedCondition(r contract.Range, ports int) metav1.Condition {
	return metav1.Condition{Type: conditionReady, Status: metav1.ConditionFalse, Reason: PortsExhausted,
		Message: fmt.Sprintf("no clusterset address: the clusterset port range %s has no room for its %d port(s); widen --clusterset-port-range (docs/scale.md)", r, ports)}
}

// sameConditions compares conditions as Ferry writes them: by type,
// status, reason and message, not by when they last changed.
func sameConditions(a, b []metav1.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		y := findCondition(b, x.Type)
		if y == nil || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message {
			return false
		}
	}
	return true
}

// mergeConditions returns want, each with the transition time of the same
// condition in cur when its status did not change, and now otherwise.
func mergeConditions(cur, want []metav1.Condition, now metav1.Time) []metav1.Condition {
	if want == nil {
		return nil
	}
	out := make([]metav1.Condition, len(want))
	for i, c := range want {
		c.LastTransitionTime = now
		if old := findCondition(cur, c.Type); old != nil && old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		out[i] = c
	}
	return out
}

func findCondition(cs []metav1.Condition, t string) *metav1.Condition {
	for i := range cs {
		if cs[i].Type == t {
			return &cs[i]
		}
	}
	return nil
}
