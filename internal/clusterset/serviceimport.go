package clusterset

import (
	"maps"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/mirror"
)

// buildImport makes the ServiceImport: its type, session affinity, traffic
// policy and distribution are the oldest export's (w), as the MCS API's
// conflict resolution says; its IPs and their families are the clusterset
// Service's (cur), for a ClusterSetIP import.
func buildImport(k Key, ports []corev1.ServicePort, clusters []string, w source, cur *corev1.Service) *mcsv1beta1.ServiceImport {
	headless := w.headless
	// The oldest export's exported labels and annotations, and the record
	// of their keys, so that keys it stops exporting are removed and
	// others' (a user's ferry.dev/affinity) never are.
	// The mirror's record is in the tenant's namespace too: keys no export
	// may carry (Ferry's own, Kubernetes') are dropped, as the exporter
	// drops them.
	exported := func(m map[string]string) map[string]string {
		out := maps.Clone(m)
		maps.DeleteFunc(out, func(k, _ string) bool { return exports.ReservedKey(k) })
		return out
	}
	wl, wa := exported(w.labels), exported(w.annotations)
	lbls := maps.Clone(wl)
	if lbls == nil {
		lbls = map[string]string{}
	}
	maps.Copy(lbls, labels(k.Service))
	anns := maps.Clone(wa)
	if anns == nil {
		anns = map[string]string{}
	}
	if len(wl)+len(wa) > 0 {
		anns[contract.AnnotationExportedKeys] = mirror.ExportedKeysOf(wl, wa)
	}
	si := &mcsv1beta1.ServiceImport{
		TypeMeta:   metav1.TypeMeta{APIVersion: mcsv1beta1.GroupVersion.String(), Kind: mcsv1beta1.ServiceImportKindName},
		ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Service, Labels: lbls, Annotations: anns},
		Spec:       mcsv1beta1.ServiceImportSpec{Type: mcsv1beta1.ClusterSetIP, SessionAffinity: corev1.ServiceAffinityNone},
	}
	if headless {
		si.Spec.Type = mcsv1beta1.Headless
	}
	if w.svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		si.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		si.Spec.SessionAffinityConfig = w.svc.Spec.SessionAffinityConfig.DeepCopy()
	}
	// A mirror's annotations are in the tenant's namespace: a value the
	// API would refuse is left out rather than block the ServiceImport.
	switch v := corev1.ServiceInternalTrafficPolicy(w.svc.Annotations[contract.AnnotationInternalTrafficPolicy]); v {
	case corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal:
		si.Spec.InternalTrafficPolicy = ptr.To(v)
	}
	if v := w.svc.Annotations[contract.AnnotationTrafficDistribution]; v != "" && exports.ValidTrafficDistribution(v) {
		si.Spec.TrafficDistribution = ptr.To(v)
	}
	for _, p := range ports {
		sp := mcsv1beta1.ServicePort{Name: p.Name, Protocol: p.Protocol, Port: p.Port}
		if p.AppProtocol != nil {
			sp.AppProtocol = ptr.To(*p.AppProtocol)
		}
		si.Spec.Ports = append(si.Spec.Ports, sp)
	}
	if !headless && cur != nil {
		si.Spec.IPs = mirror.ClusterIPs(cur)
		for _, ip := range si.Spec.IPs {
			// ipFamilies[i] is the family of ips[i].
			if a, err := netip.ParseAddr(ip); err == nil && a.Unmap().Is4() {
				si.Spec.IPFamilies = append(si.Spec.IPFamilies, corev1.IPv4Protocol)
			} else {
				si.Spec.IPFamilies = append(si.Spec.IPFamilies, corev1.IPv6Protocol)
			}
		}
	}
	for _, c := range clusters {
		si.Status.Clusters = append(si.Status.Clusters, mcsv1beta1.ClusterStatus{Cluster: c})
	}
	return si
}
