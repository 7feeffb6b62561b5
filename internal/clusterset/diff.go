package clusterset

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/mirror"
	"ferry.dev/ferry/internal/steering"
	"ferry.dev/ferry/internal/writer"
)

// Objects are the clusterset objects that exist (all carry the label).
type Objects struct {
	Imports  []*mcsv1beta1.ServiceImport
	Services []*corev1.Service
	Slices   []*discoveryv1.EndpointSlice
	// Routes are every route of the cluster, whose status Ferry may have
	// entries in (RouteStatusOps).
	Routes steering.Routes
}

// Diff returns the writes that make have equal to want: none when they
// already are. Objects in have are never modified. Creates and updates of
// Services and EndpointSlices come first, then ServiceImports, then the
// deletes (ServiceImports first, Services last).
func Diff(want State, have Objects) []writer.Op {
	var ops, dels []writer.Op
	haveSvc := index(have.Services)
	for _, d := range want.Services {
		cur, ok := haveSvc[key(d)]
		delete(haveSvc, key(d))
		switch {
		case !ok:
			ops = append(ops, writer.Op{Verb: writer.Create, Object: d.DeepCopy()})
		case serviceDiffers(cur, d):
			out := cur.DeepCopy()
			out.Labels = withAll(cur.Labels, d.Labels)
			out.Annotations = withAll(cur.Annotations, d.Annotations)
			out.Spec.Type, out.Spec.Selector = d.Spec.Type, nil
			out.Spec.Ports = slices.Clone(d.Spec.Ports)
			ops = append(ops, writer.Op{Verb: writer.Update, Object: out})
		}
	}
	haveSlice := index(have.Slices)
	for _, d := range want.Slices {
		cur, ok := haveSlice[key(d)]
		delete(haveSlice, key(d))
		switch {
		case !ok:
			ops = append(ops, writer.Op{Verb: writer.Create, Object: d.DeepCopy()})
		case sliceDiffers(cur, d):
			out := cur.DeepCopy()
			out.Labels = withAll(cur.Labels, d.Labels)
			out.AddressType = d.AddressType
			out.Ports = d.DeepCopy().Ports
			out.Endpoints = d.DeepCopy().Endpoints
			ops = append(ops, writer.Op{Verb: writer.Update, Object: out})
		}
	}
	haveImp := index(have.Imports)
	for _, d := range want.Imports {
		cur, ok := haveImp[key(d)]
		delete(haveImp, key(d))
		statusDiffers := !ok || !slices.Equal(cur.Status.Clusters, d.Status.Clusters) ||
			!sameConditions(cur.Status.Conditions, d.Status.Conditions)
		switch {
		case !ok:
			out := d.DeepCopy()
			out.Status.Conditions = mergeConditions(nil, d.Status.Conditions, want.Now)
			ops = append(ops, writer.Op{Verb: writer.Create, Object: out, Status: len(d.Status.Clusters)+len(d.Status.Conditions) > 0})
		case importDiffers(cur, d):
			out := cur.DeepCopy()
			prev := previousKeys(cur)
			out.Labels = mirror.MergeMetadata(cur.Labels, d.Labels, listed(prev.Labels))
			out.Annotations = mirror.MergeMetadata(cur.Annotations, d.Annotations, listed(prev.Annotations))
			// The spec is Ferry's alone: every field from the desired one.
			out.Spec = *d.Spec.DeepCopy()
			out.Status.Clusters = slices.Clone(d.Status.Clusters)
			out.Status.Conditions = mergeConditions(cur.Status.Conditions, d.Status.Conditions, want.Now)
			ops = append(ops, writer.Op{Verb: writer.Update, Object: out, Status: statusDiffers})
		case statusDiffers:
			out := cur.DeepCopy()
			out.Status.Clusters = slices.Clone(d.Status.Clusters)
			out.Status.Conditions = mergeConditions(cur.Status.Conditions, d.Status.Conditions, want.Now)
			ops = append(ops, writer.Op{Verb: writer.UpdateStatus, Object: out})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(haveImp)) {
		dels = append(dels, writer.Op{Verb: writer.Delete, Object: haveImp[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(haveSlice)) {
		dels = append(dels, writer.Op{Verb: writer.Delete, Object: haveSlice[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(haveSvc)) {
		dels = append(dels, writer.Op{Verb: writer.Delete, Object: haveSvc[k]})
	}
	return append(ops, dels...)
}

func key(o client.Object) string { return o.GetNamespace() + "/" + o.GetName() }

func index[T client.Object](objs []T) map[string]T {
	m := make(map[string]T, len(objs))
	for _, o := range objs {
		m[key(o)] = o
	}
	return m
}

// hasAll reports whether have holds every entry of want; other
// controllers' keys are left alone.
func hasAll(have, want map[string]string) bool {
	for k, v := range want {
		if cur, ok := have[k]; !ok || cur != v {
			return false
		}
	}
	return true
}

func withAll(have, want map[string]string) map[string]string {
	out := maps.Clone(have)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, want)
	return out
}

// serviceDiffers compares the fields Ferry manages; what the API server
// assigns (clusterIP, families) is left alone.
func serviceDiffers(cur, want *corev1.Service) bool {
	return cur.Spec.Type != want.Spec.Type || len(cur.Spec.Selector) != 0 ||
		!slices.EqualFunc(cur.Spec.Ports, want.Spec.Ports, func(x, y corev1.ServicePort) bool {
			return x.Name == y.Name && x.Protocol == y.Protocol && x.Port == y.Port &&
				x.TargetPort == y.TargetPort && ptr.Deref(x.AppProtocol, "") == ptr.Deref(y.AppProtocol, "")
		}) ||
		!hasAll(cur.Labels, want.Labels) || !hasAll(cur.Annotations, want.Annotations)
}

func sliceDiffers(cur, want *discoveryv1.EndpointSlice) bool {
	return cur.AddressType != want.AddressType || !hasAll(cur.Labels, want.Labels) ||
		!slices.EqualFunc(cur.Ports, want.Ports, func(x, y discoveryv1.EndpointPort) bool {
			return ptr.Deref(x.Name, "") == ptr.Deref(y.Name, "") &&
				ptr.Deref(x.Protocol, corev1.ProtocolTCP) == ptr.Deref(y.Protocol, corev1.ProtocolTCP) &&
				ptr.Deref(x.Port, 0) == ptr.Deref(y.Port, 0) &&
				ptr.Deref(x.AppProtocol, "") == ptr.Deref(y.AppProtocol, "")
		}) ||
		!slices.EqualFunc(cur.Endpoints, want.Endpoints, func(x, y discoveryv1.Endpoint) bool {
			c, d := x.Conditions, y.Conditions
			return slices.Equal(x.Addresses, y.Addresses) && ptr.Deref(x.Hostname, "") == ptr.Deref(y.Hostname, "") &&
				ptr.Deref(c.Ready, true) == ptr.Deref(d.Ready, true) &&
				ptr.Deref(c.Serving, ptr.Deref(c.Ready, true)) == ptr.Deref(d.Serving, true) &&
				ptr.Deref(c.Terminating, false) == ptr.Deref(d.Terminating, false)
		})
}

func importDiffers(cur, want *mcsv1beta1.ServiceImport) bool {
	prev := previousKeys(cur)
	return mirror.MetadataDiffers(cur.Labels, want.Labels, listed(prev.Labels)) ||
		mirror.MetadataDiffers(cur.Annotations, want.Annotations, listed(prev.Annotations)) ||
		cur.Spec.Type != want.Spec.Type || !slices.Equal(cur.Spec.IPs, want.Spec.IPs) ||
		!slices.Equal(cur.Spec.IPFamilies, want.Spec.IPFamilies) ||
		cur.Spec.SessionAffinity != want.Spec.SessionAffinity ||
		!apiequality.Semantic.DeepEqual(cur.Spec.SessionAffinityConfig, want.Spec.SessionAffinityConfig) ||
		ptr.Deref(cur.Spec.InternalTrafficPolicy, "") != ptr.Deref(want.Spec.InternalTrafficPolicy, "") ||
		ptr.Deref(cur.Spec.TrafficDistribution, "") != ptr.Deref(want.Spec.TrafficDistribution, "") ||
		!slices.EqualFunc(cur.Spec.Ports, want.Spec.Ports, func(x, y mcsv1beta1.ServicePort) bool {
			return x.Name == y.Name && x.Protocol == y.Protocol && x.Port == y.Port &&
				ptr.Deref(x.AppProtocol, "") == ptr.Deref(y.AppProtocol, "")
		})
}

// previousKeys are the keys Ferry wrote on a ServiceImport: those its
// record lists, and the record itself (gone when nothing is exported).
func previousKeys(si *mcsv1beta1.ServiceImport) mirror.ExportedKeys {
	prev, _ := mirror.ParseExportedKeys(si.Annotations)
	prev.Annotations = append(prev.Annotations, contract.AnnotationExportedKeys)
	return prev
}

// listed: on a ServiceImport, Ferry manages only the keys it recorded.
// ferry.dev/ keys are not all its own there: ferry.dev/affinity is the
// user's.
func listed(keys []string) func(string) bool {
	return func(k string) bool { return slices.Contains(keys, k) }
}
