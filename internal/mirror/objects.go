package mirror

import (
	"maps"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

// DefaultClientIPTimeout is Kubernetes' default ClientIP affinity timeout,
// used when an export asks for ClientIP without one, so the mirror is
// written exactly as the API server would default it (and never rewritten).
const DefaultClientIPTimeout int32 = 10800

// OwnershipLabels are the labels that mark an object as this Link's.
func OwnershipLabels(link Link) map[string]string {
	return map[string]string{
		contract.LabelLink:            link.Name,
		contract.LabelSourceCluster:   link.Cluster,
		mcsv1beta1.LabelSourceCluster: link.Cluster,
	}
}

// buildService makes the mirror Service: no selector (its endpoints are the
// gateway's, written by Ferry), ports carrying the egress port as targetPort.
// Its annotations record which keys came from the export
// (contract.AnnotationExportedKeys), so that Diff can remove them once the
// remote stops exporting them without touching other controllers' keys.
//
// A headless export whose pods have no hostnames is mirrored as a ClusterIP
// Service too: its pods cannot be named, and clients must reach the
// gateway's egress port, which only kube-proxy's port translation of a
// ClusterIP provides. One with hostnames is headless.go's.
func buildService(link Link, e *exports.Export, name string, ports []exports.Port, egress []int32) *corev1.Service {
	lbls := maps.Clone(e.Labels)
	if lbls == nil {
		lbls = map[string]string{}
	}
	maps.Copy(lbls, OwnershipLabels(link))
	ann := maps.Clone(e.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	ann[contract.AnnotationRemoteService] = e.Name
	ann[contract.AnnotationExportedKeys] = ExportedKeysOf(e.Labels, e.Annotations)
	if e.Type != "" && e.Type != exports.ClusterSetIP {
		ann[contract.AnnotationExportType] = string(e.Type)
	}
	ann[contract.AnnotationReadyEndpoints] = strconv.FormatInt(int64(e.ReadyEndpoints), 10)
	if !e.Created.IsZero() {
		ann[contract.AnnotationExportCreated] = e.Created.UTC().Format(time.RFC3339)
	}
	if u := FormatUncarried(e.Ports); u != "" {
		ann[contract.AnnotationUncarriedPorts] = u
	}
	if e.InternalTrafficPolicy != "" {
		ann[contract.AnnotationInternalTrafficPolicy] = e.InternalTrafficPolicy
	}
	if e.TrafficDistribution != "" {
		ann[contract.AnnotationTrafficDistribution] = e.TrafficDistribution
	}

	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: name, Labels: lbls, Annotations: ann},
		Spec: corev1.ServiceSpec{
			Type:            corev1.ServiceTypeClusterIP,
			SessionAffinity: corev1.ServiceAffinityNone,
		},
	}
	for i, p := range ports {
		sp := corev1.ServicePort{
			Name:       p.Name,
			Protocol:   corev1.ProtocolTCP,
			Port:       p.Port,
			TargetPort: intstr.FromInt32(egress[i]),
		}
		if p.AppProtocol != "" {
			sp.AppProtocol = ptr.To(p.AppProtocol)
		}
		svc.Spec.Ports = append(svc.Spec.Ports, sp)
	}
	if e.SessionAffinity == string(corev1.ServiceAffinityClientIP) {
		timeout := e.SessionAffinityTimeoutSeconds
		if timeout <= 0 {
			timeout = DefaultClientIPTimeout
		}
		svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		svc.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(timeout)}}
	}
	return svc
}

// SliceLabels are the labels of a mirror's EndpointSlice: the standard ones
// kube-proxy reads, and the ownership labels. They do not carry the MCS
// service-name label: DNS reads the slices with that label as a headless
// ServiceImport's endpoints, and those are the clusterset reconciler's
// (contract.PodSliceName), resolved across Links and conflicts.
func SliceLabels(link Link, mirror string) map[string]string {
	l := OwnershipLabels(link)
	l[discoveryv1.LabelServiceName] = mirror
	l[discoveryv1.LabelManagedBy] = contract.ManagedBy
	return l
}

// buildSlice makes one EndpointSlice of a mirror: the local gateway pods,
// listening on the mirror's egress ports.
func buildSlice(link Link, e *exports.Export, mirror string, ports []exports.Port, egress []int32, family discoveryv1.AddressType, addrs []string, ready bool) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: e.Namespace,
			Name:      SliceName(mirror, family),
			Labels:    SliceLabels(link, mirror),
		},
		AddressType: family,
	}
	for i, p := range ports {
		ep := discoveryv1.EndpointPort{Name: ptr.To(p.Name), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(egress[i])}
		if p.AppProtocol != "" {
			ep.AppProtocol = ptr.To(p.AppProtocol)
		}
		s.Ports = append(s.Ports, ep)
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{a},
			Conditions: discoveryv1.EndpointConditions{
				Ready:       ptr.To(ready),
				Serving:     ptr.To(ready),
				Terminating: ptr.To(false),
			},
		})
	}
	return s
}

// FormatUncarried is the contract.AnnotationUncarriedPorts value of the
// ports no gateway carries, "" when there is none.
func FormatUncarried(ports []exports.Port) string {
	var parts []string
	for _, p := range ports {
		if !p.Carried() {
			parts = append(parts, p.Name+"/"+p.Protocol+"/"+strconv.Itoa(int(p.Port)))
		}
	}
	return strings.Join(parts, ",")
}

// ParseUncarried reads contract.AnnotationUncarriedPorts. Entries that do
// not parse are left out: the annotation only adds ports to a
// ServiceImport's list, and a forged entry opens nothing.
func ParseUncarried(v string) []exports.Port {
	var out []exports.Port
	for entry := range strings.SplitSeq(v, ",") {
		name, rest, ok1 := strings.Cut(entry, "/")
		proto, num, ok2 := strings.Cut(rest, "/")
		n, err := strconv.ParseInt(num, 10, 32)
		if !ok1 || !ok2 || err != nil || n < 1 || n > 65535 || (proto != "UDP" && proto != "SCTP") ||
			(name != "" && len(validation.IsDNS1123Label(name)) > 0) {
			continue
		}
		out = append(out, exports.Port{Name: name, Protocol: proto, Port: int32(n)})
	}
	return out
}
