package exportwatch

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

func TestSlimService(t *testing.T) {
	spec := corev1.ServiceSpec{ClusterIP: "10.0.0.1", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}
	for _, tc := range []struct {
		name      string
		labels    map[string]string
		keepsSpec bool
	}{
		{"a Service of the cluster's own", map[string]string{"app": "web"}, true},
		{"a mirror", map[string]string{contract.LabelLink: "east", contract.LabelSourceCluster: "east"}, false},
		{"a clusterset Service", map[string]string{contract.LabelClusterset: "web"}, false},
		// Compute refuses only a non-empty value: slimming must agree.
		{"an empty ferry.dev/link label", map[string]string{contract.LabelLink: ""}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "apps", Labels: tc.labels,
					Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
				Spec: spec,
			}
			got, err := slimService(in)
			if err != nil {
				t.Fatal(err)
			}
			s := got.(*corev1.Service)
			if s.Name != "web" || s.Namespace != "apps" || len(s.Labels) != len(tc.labels) || s.Annotations != nil {
				t.Errorf("metadata kept: %+v", s.ObjectMeta)
			}
			if kept := len(s.Spec.Ports) == 1 && s.Spec.ClusterIP == "10.0.0.1"; kept != tc.keepsSpec {
				t.Errorf("spec kept = %v, want %v", kept, tc.keepsSpec)
			}
			// What Compute reads of it: an owned Service is still refused.
			if _, st := computeOne(se("apps", "web"), s, nil); (st.Reason == exports.ReasonImportedService) == tc.keepsSpec {
				t.Errorf("Compute on the slimmed Service: reason %q", st.Reason)
			}
		})
	}
}
