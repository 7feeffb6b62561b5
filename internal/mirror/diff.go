package mirror

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"ferry.dev/ferry/internal/writer"
)

// Why a write happens; the importer counts writes by these.
const (
	ReasonNew       = "new"       // a mirror or slice that did not exist
	ReasonSpec      = "spec"      // ports, egress ports or session affinity
	ReasonMetadata  = "metadata"  // exported labels or annotations
	ReasonEndpoints = "endpoints" // gateway addresses or egress ports
	ReasonReadiness = "readiness" // only endpoint conditions changed
	ReasonUnexport  = "unexport"  // no longer desired
)

// Diff compares the desired state with what the Link owns and returns the
// writes that make them equal: none when they already are. Owned objects
// are never modified; updates work on deep copies.
func Diff(want State, owned Objects) []writer.Op {
	var ops []writer.Op
	haveSvc := make(map[string]*corev1.Service, len(owned.Services))
	for _, s := range owned.Services {
		haveSvc[s.Namespace+"/"+s.Name] = s
	}
	haveSlice := make(map[string]*discoveryv1.EndpointSlice, len(owned.Slices))
	for _, s := range owned.Slices {
		haveSlice[s.Namespace+"/"+s.Name] = s
	}
	for _, d := range want.Services {
		k := d.Namespace + "/" + d.Name
		cur, ok := haveSvc[k]
		delete(haveSvc, k)
		if !ok {
			ops = append(ops, writer.Op{Verb: writer.Create, Reason: ReasonNew, Object: d.DeepCopy()})
			continue
		}
		if headless(cur) != headless(d) {
			// A Service's ClusterIP cannot change: delete it, and the pass
			// that its deletion wakes creates the new one. Its clients
			// lose the name for that moment, as they would its pods.
			ops = append(ops, writer.Op{Verb: writer.Delete, Reason: ReasonSpec, Object: cur})
			continue
		}
		if reason, differs := serviceDiffers(cur, d); differs {
			ops = append(ops, writer.Op{Verb: writer.Update, Reason: reason, Object: mergeService(cur, d)})
		}
	}
	for _, d := range want.Slices {
		k := d.Namespace + "/" + d.Name
		cur, ok := haveSlice[k]
		delete(haveSlice, k)
		if !ok {
			ops = append(ops, writer.Op{Verb: writer.Create, Reason: ReasonNew, Object: d.DeepCopy()})
			continue
		}
		if reason, differs := sliceDiffers(cur, d); differs {
			ops = append(ops, writer.Op{Verb: writer.Update, Reason: reason, Object: mergeSlice(cur, d)})
		}
	}
	// Leftovers are owned but no longer desired. Deterministic order keeps
	// logs and tests stable.
	for _, k := range slices.Sorted(maps.Keys(haveSlice)) {
		ops = append(ops, writer.Op{Verb: writer.Delete, Reason: ReasonUnexport, Object: haveSlice[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(haveSvc)) {
		ops = append(ops, writer.Op{Verb: writer.Delete, Reason: ReasonUnexport, Object: haveSvc[k]})
	}
	return ops
}

// serviceDiffers compares only the fields Ferry manages; the API server's
// defaults (clusterIP, ipFamilies, internalTrafficPolicy...) are left alone,
// and so are the labels and annotations of other controllers (metadata.go).
func serviceDiffers(cur, want *corev1.Service) (string, bool) {
	if !portsEqual(cur.Spec.Ports, want.Spec.Ports) ||
		cur.Spec.Type != want.Spec.Type ||
		len(cur.Spec.Selector) != 0 ||
		cur.Spec.SessionAffinity != want.Spec.SessionAffinity ||
		affinityTimeout(cur) != affinityTimeout(want) {
		return ReasonSpec, true
	}
	prev, _ := ParseExportedKeys(cur.Annotations)
	if managedDiffers(cur.Labels, want.Labels, prev.Labels) ||
		managedDiffers(cur.Annotations, want.Annotations, prev.Annotations) {
		return ReasonMetadata, true
	}
	return "", false
}

func headless(s *corev1.Service) bool { return s.Spec.ClusterIP == corev1.ClusterIPNone }

func portsEqual(a, b []corev1.ServicePort) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.ServicePort) bool {
		return x.Name == y.Name && x.Protocol == y.Protocol && x.Port == y.Port &&
			x.TargetPort == y.TargetPort && ptr.Deref(x.AppProtocol, "") == ptr.Deref(y.AppProtocol, "") &&
			x.NodePort == 0
	})
}

func affinityTimeout(s *corev1.Service) int32 {
	if c := s.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil {
		return ptr.Deref(c.ClientIP.TimeoutSeconds, 0)
	}
	return 0
}

// mergeService returns a copy of cur with want's managed fields, keeping
// what the API server assigned (clusterIP, families) so the update is
// accepted, and other controllers' labels and annotations.
func mergeService(cur, want *corev1.Service) *corev1.Service {
	out := cur.DeepCopy()
	prev, _ := ParseExportedKeys(cur.Annotations)
	out.Labels = mergeManaged(cur.Labels, want.Labels, prev.Labels)
	out.Annotations = mergeManaged(cur.Annotations, want.Annotations, prev.Annotations)
	out.Spec.Type = want.Spec.Type
	out.Spec.Selector = nil
	out.Spec.Ports = slices.Clone(want.Spec.Ports)
	out.Spec.SessionAffinity = want.Spec.SessionAffinity
	out.Spec.SessionAffinityConfig = want.Spec.SessionAffinityConfig.DeepCopy()
	return out
}

func sliceDiffers(cur, want *discoveryv1.EndpointSlice) (string, bool) {
	if cur.AddressType != want.AddressType || !slicePortsEqual(cur.Ports, want.Ports) ||
		!slices.EqualFunc(cur.Endpoints, want.Endpoints, sameAddresses) {
		return ReasonEndpoints, true
	}
	if !slices.EqualFunc(cur.Endpoints, want.Endpoints, sameConditions) {
		return ReasonReadiness, true
	}
	if managedDiffers(cur.Labels, want.Labels, nil) || managedDiffers(cur.Annotations, want.Annotations, nil) {
		return ReasonMetadata, true
	}
	return "", false
}

func slicePortsEqual(a, b []discoveryv1.EndpointPort) bool {
	return slices.EqualFunc(a, b, func(x, y discoveryv1.EndpointPort) bool {
		return ptr.Deref(x.Name, "") == ptr.Deref(y.Name, "") &&
			ptr.Deref(x.Protocol, corev1.ProtocolTCP) == ptr.Deref(y.Protocol, corev1.ProtocolTCP) &&
			ptr.Deref(x.Port, 0) == ptr.Deref(y.Port, 0) &&
			ptr.Deref(x.AppProtocol, "") == ptr.Deref(y.AppProtocol, "")
	})
}

func sameAddresses(x, y discoveryv1.Endpoint) bool {
	return slices.Equal(x.Addresses, y.Addresses) && ptr.Deref(x.Hostname, "") == ptr.Deref(y.Hostname, "") &&
		x.TargetRef == nil && x.NodeName == nil && x.Zone == nil
}

func sameConditions(x, y discoveryv1.Endpoint) bool {
	c, d := x.Conditions, y.Conditions
	// The API reads an unset ready as ready; compare what clients see.
	return ptr.Deref(c.Ready, true) == ptr.Deref(d.Ready, true) &&
		ptr.Deref(c.Serving, ptr.Deref(c.Ready, true)) == ptr.Deref(d.Serving, ptr.Deref(d.Ready, true)) &&
		ptr.Deref(c.Terminating, false) == ptr.Deref(d.Terminating, false)
}

func mergeSlice(cur, want *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	out := cur.DeepCopy()
	out.Labels = mergeManaged(cur.Labels, want.Labels, nil)
	out.Annotations = mergeManaged(cur.Annotations, want.Annotations, nil)
	out.AddressType = want.AddressType
	out.Ports = want.DeepCopy().Ports
	out.Endpoints = want.DeepCopy().Endpoints
	return out
}
