package clusterset

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
)

// Which mirrors the clusterset reconciler believes: the claimed ones, and
// during an upgrade those of existing Links that hold no claim yet; never a
// mirror of a Link that holds claims but not for it, nor one that names no
// Link.
func TestClaimedMirrors(t *testing.T) {
	m := func(ns, name, link string, egress int32) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
				Labels: map[string]string{contract.LabelLink: link, contract.LabelSourceCluster: link}},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(egress)}}},
		}
	}
	real := m("shop", "web-east", "east", 41000)
	copied := m("tenant", "web-east", "east", 41001)    // east holds claims, none for this
	upgrading := m("shop", "web-north", "north", 41002) // north exists, holds no claim yet
	nobody := m("tenant", "web-ghost", "ghost", 41003)  // no such Link
	table := claims.Table{41000: {Owner: claims.LinkOwner("east"), Namespace: "shop", Service: "web-east", Port: 80}}
	got := claimedMirrors([]*corev1.Service{real, copied, upgrading, nobody}, table, map[string]bool{"east": true, "north": true})
	if !slices.Equal(got, []*corev1.Service{real, upgrading}) {
		var names []string
		for _, s := range got {
			names = append(names, s.Namespace+"/"+s.Name)
		}
		t.Errorf("believed %v, want shop/web-east and shop/web-north", names)
	}
}
