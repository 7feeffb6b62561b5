package sandbox

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestDeploymentStatus(t *testing.T) {
	app := map[string]string{"app": "gw"}
	pod := func(name string, ready bool, labels map[string]string) corev1.Pod {
		s := corev1.ConditionFalse
		if ready {
			s = corev1.ConditionTrue
		}
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: s}}}}
	}
	gone := pod("gone", true, app)
	gone.DeletionTimestamp = &metav1.Time{}
	cases := []struct {
		name                  string
		replicas              int32
		pods                  []corev1.Pod
		ready, total, unavail int32
		available             corev1.ConditionStatus
	}{
		{"the sandbox's one pod", 1, []corev1.Pod{pod("a", true, app)}, 1, 1, 0, corev1.ConditionTrue},
		{"not ready", 1, []corev1.Pod{pod("a", false, app)}, 0, 1, 1, corev1.ConditionFalse},
		{"another app's pod and a deleted one", 2, []corev1.Pod{pod("a", true, app), pod("b", true, map[string]string{"app": "other"}), gone}, 1, 1, 1, corev1.ConditionFalse},
		{"3 of 4 is within maxUnavailable 25%", 4, []corev1.Pod{pod("a", true, app), pod("b", true, app), pod("c", true, app), pod("d", false, app)}, 3, 4, 1, corev1.ConditionTrue},
	}
	for _, c := range cases {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "gw", Generation: 3},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To(c.replicas), Selector: &metav1.LabelSelector{MatchLabels: app}}}
		st := deploymentStatus(d, c.pods, metav1.Now())
		if st.ReadyReplicas != c.ready || st.AvailableReplicas != c.ready || st.Replicas != c.total || st.UpdatedReplicas != c.total ||
			st.UnavailableReplicas != c.unavail || st.ObservedGeneration != 3 || st.Conditions[0].Status != c.available {
			t.Errorf("%s: %+v", c.name, st)
		}
	}
}
