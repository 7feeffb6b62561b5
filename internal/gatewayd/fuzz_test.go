package gatewayd

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
)

// FuzzRoutes builds two Services from tenant-controlled metadata (labels,
// annotations, ports: anything a tenant can write) and derives the routes.
// Whatever the input, a route listens only inside the egress ranges, no
// port is opened twice, and every destination is a linked cluster and a
// target that validates. Without claims (forged Services) nothing routes.
func FuzzRoutes(f *testing.F) {
	f.Add("east", "east", "web", "", "east,north", "web", int32(80), int32(41000), "", int32(49000), true)
	f.Add("east", "north", "../x", "Headless", ",,east,,", "x", int32(0), int32(4143), "http", int32(-1), true)
	f.Add("east", "east", "web", "", "east", "web", int32(80), int32(41000), "", int32(49000), false)
	f.Fuzz(func(t *testing.T, link, cluster, remote, typ, clusters, exported string, port, target int32, named string, csTarget int32, claimed bool) {
		tp := intstr.FromInt32(target)
		if named != "" {
			tp = intstr.FromString(named)
		}
		m := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: contract.MirrorName(remote, cluster),
				Labels:      map[string]string{contract.LabelLink: link, contract.LabelSourceCluster: cluster},
				Annotations: map[string]string{contract.AnnotationRemoteService: remote, contract.AnnotationExportType: typ}},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: port, TargetPort: tp}}},
		}
		cs := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: contract.ClustersetName(exported),
				Labels:      map[string]string{contract.LabelClusterset: exported},
				Annotations: map[string]string{contract.AnnotationRemoteService: exported, contract.AnnotationClusters: clusters}},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: port, TargetPort: intstr.FromInt32(csTarget)}}},
		}
		links := []*ferryv1.Link{
			{ObjectMeta: metav1.ObjectMeta{Name: "east"}, Spec: ferryv1.LinkSpec{ClusterName: "east"}},
			{ObjectMeta: metav1.ObjectMeta{Name: "north"}, Spec: ferryv1.LinkSpec{ClusterName: "north"}},
		}
		egress, cset := contract.DefaultEgressRange(), contract.DefaultClustersetRange()
		svcs := []*corev1.Service{m, cs}
		table := claims.Table{}
		if claimed {
			table = claimsOf(links, svcs)
		}
		routes, _ := Routes(svcs, links, table, LocalExports{}, egress, cset)
		if !claimed && len(routes) > 0 {
			t.Fatalf("unclaimed Services routed: %+v", routes)
		}
		seen := map[int]bool{}
		for _, r := range routes {
			if !egress.Contains(int32(r.Port)) && !cset.Contains(int32(r.Port)) {
				t.Fatalf("route on port %d, outside both ranges", r.Port)
			}
			if seen[r.Port] {
				t.Fatalf("port %d opened twice", r.Port)
			}
			seen[r.Port] = true
			for _, d := range r.Destinations {
				if d.Cluster != "east" && d.Cluster != "north" {
					t.Fatalf("destination %q has no Link", d.Cluster)
				}
				if err := d.Target.Validate(); err != nil {
					t.Fatalf("destination target %+v: %v", d.Target, err)
				}
			}
		}
	})
}
