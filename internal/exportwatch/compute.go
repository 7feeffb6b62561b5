package exportwatch

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

// Compute is the export set of one cluster, a pure function of its
// ServiceExports, Services and EndpointSlices. An export exists when a
// ServiceExport and a Service of the same namespace and name exist and the
// Service is one Ferry can carry. It returns one Status per ServiceExport
// that is not being deleted, sorted by key, valid or not.
//
// EndpointSlices belong to a Service by the kubernetes.io/service-name label,
// as the endpointslice controller writes it. Inputs are never modified.
func Compute(serviceExports []*mcsv1beta1.ServiceExport, services []*corev1.Service, endpointSlices []*discoveryv1.EndpointSlice) (map[exports.Key]exports.Export, []exports.Status) {
	exported := make(map[exports.Key]*mcsv1beta1.ServiceExport, len(serviceExports))
	for _, se := range serviceExports {
		if se == nil || se.DeletionTimestamp != nil {
			continue
		}
		exported[exports.Key{Namespace: se.Namespace, Name: se.Name}] = se
	}
	svcs := make(map[exports.Key]*corev1.Service, len(exported))
	for _, s := range services {
		if s == nil {
			continue
		}
		if k := (exports.Key{Namespace: s.Namespace, Name: s.Name}); exported[k] != nil {
			svcs[k] = s
		}
	}
	epSlices := make(map[exports.Key][]*discoveryv1.EndpointSlice, len(exported))
	for _, sl := range endpointSlices {
		if sl == nil {
			continue
		}
		k := exports.Key{Namespace: sl.Namespace, Name: sl.Labels[discoveryv1.LabelServiceName]}
		if exported[k] != nil {
			epSlices[k] = append(epSlices[k], sl)
		}
	}

	set := make(map[exports.Key]exports.Export, len(exported))
	statuses := make([]exports.Status, 0, len(exported))
	for k, se := range exported {
		exp, st := computeOne(se, svcs[k], epSlices[k])
		if st.Valid {
			set[k] = exp
		}
		statuses = append(statuses, st)
	}
	slices.SortFunc(statuses, func(a, b exports.Status) int { return exports.CompareKeys(a.Key, b.Key) })
	return set, statuses
}

func computeOne(se *mcsv1beta1.ServiceExport, svc *corev1.Service, epSlices []*discoveryv1.EndpointSlice) (exports.Export, exports.Status) {
	k := exports.Key{Namespace: se.Namespace, Name: se.Name}
	st := exports.Status{Key: k, Generation: se.Generation}
	invalid := func(reason, format string, args ...any) (exports.Export, exports.Status) {
		// The message says why; warnings about parts of an export that does
		// not exist would only distract.
		st.Reason, st.Message, st.Warnings = reason, fmt.Sprintf(format, args...), nil
		return exports.Export{}, st
	}
	if r := Exportable(svc); r != nil {
		return invalid(r.Reason, "%s", r.Message(k))
	}

	exp := exports.Export{Key: k, Type: exports.ClusterSetIP, SessionAffinity: string(corev1.ServiceAffinityNone)}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		exp.Type = exports.Headless
	}
	for _, p := range svc.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP // the API server's default
		}
		if proto != corev1.ProtocolTCP {
			// Listed on the ServiceImport, as the MCS API has it, and
			// carried by no gateway: importers open no egress port for it.
			st.Warnings = append(st.Warnings, fmt.Sprintf("port %s: %s %d is listed on ServiceImports but not carried: Ferry's gateways carry TCP only", portName(p), proto, p.Port))
		}
		exp.Ports = append(exp.Ports, exports.Port{Name: p.Name, Protocol: string(proto), Port: p.Port, AppProtocol: deref(p.AppProtocol)})
	}
	slices.SortFunc(exp.Ports, exports.ComparePorts)

	if p := svc.Spec.InternalTrafficPolicy; p != nil {
		exp.InternalTrafficPolicy = string(*p)
	}
	if d := svc.Spec.TrafficDistribution; d != nil && exports.ValidTrafficDistribution(*d) {
		exp.TrafficDistribution = *d
	}
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		exp.SessionAffinity = string(corev1.ServiceAffinityClientIP)
		exp.SessionAffinityTimeoutSeconds = corev1.DefaultClientIPServiceAffinitySeconds
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			exp.SessionAffinityTimeoutSeconds = *c.ClientIP.TimeoutSeconds
		}
	}

	// Kubernetes keeps creation times to the second; normalising makes an
	// export compare equal to itself after a round trip through the feed.
	exp.Created = se.CreationTimestamp.UTC().Truncate(time.Second)

	var w []string
	var lsize, asize int
	exp.Labels, w, lsize = cleanLabels(se.Spec.ExportedLabels)
	st.Warnings = append(st.Warnings, w...)
	exp.Annotations, w, asize = cleanAnnotations(se.Spec.ExportedAnnotations)
	st.Warnings = append(st.Warnings, w...)
	if lsize+asize > exports.MaxExportedMetadataBytes {
		return invalid(exports.ReasonTooLarge, "exportedLabels and exportedAnnotations take %d bytes; at most %d can be exported", lsize+asize, exports.MaxExportedMetadataBytes)
	}

	allowed, present := se.Annotations[contract.AnnotationAllowedClusters]
	exp.AllowedClusters, w = exports.ParseAllowedClusters(allowed, present)
	st.Warnings = append(st.Warnings, w...)

	ready := readyEndpoints(epSlices, exp.Type == exports.Headless)
	exp.ReadyEndpoints = ready.count
	hostnames := ready.hostnames
	if len(hostnames) > exports.MaxHostnames {
		st.Warnings = append(st.Warnings, fmt.Sprintf("only the first %d of %d ready hostnames are exported", exports.MaxHostnames, len(hostnames)))
		hostnames = hostnames[:exports.MaxHostnames]
	} else if len(ready.pods) > exports.MaxHostnames {
		// (Past the hostname bound, that warning says enough.)
		st.Warnings = append(st.Warnings, fmt.Sprintf("only the first %d of %d ready pods are in this cluster's clusterset DNS", exports.MaxHostnames, len(ready.pods)))
	}
	exp.Hostnames = hostnames
	if exp.Type == exports.Headless && len(hostnames) == 0 && exp.ReadyEndpoints > 0 {
		st.Warnings = append(st.Warnings, "headless, but no ready endpoint has a hostname: importing clusters reach its pods through one address per cluster, not each by name")
	}
	if len(ready.pods) > exports.MaxHostnames {
		ready.pods = ready.pods[:exports.MaxHostnames]
	}
	exp.LocalPods, exp.LocalPorts = ready.pods, ready.ports
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, ip := range ips {
		if ip != corev1.ClusterIPNone && ip != "" {
			exp.LocalClusterIPs = append(exp.LocalClusterIPs, ip)
		}
	}

	sort.Strings(st.Warnings)
	st.Valid, st.Reason = true, exports.ReasonValid
	st.Message = "Service " + k.String() + " is exported"
	if len(st.Warnings) > 0 {
		st.Message += "; " + strings.Join(st.Warnings, "; ")
	}
	return exp, st
}

// ready is what an export's EndpointSlices say of its ready endpoints.
type ready struct {
	count int32
	// hostnames (sorted, distinct), pods and ports: for headless Services
	// only.
	hostnames []string
	pods      []exports.LocalPod
	ports     []exports.Port
}

// readyEndpoints counts the distinct ready endpoints across slices and, for
// headless Services, collects their hostnames and the pods themselves (with
// every address of each, named pods first, by hostname, then address) and
// the ports of the first slice, by name, with ports and a ready endpoint.
// Pods of a slice with other ports (a rollout that changes a named
// targetPort's number) are listed with those: their addresses are right,
// and only their SRV records are off until the rollout ends. An endpoint appears in several
// slices while the endpointslice controller moves it, and in one slice per
// address family on dual-stack Services, so endpoints are told apart by
// their target (the pod) when they name one.
func readyEndpoints(epSlices []*discoveryv1.EndpointSlice, headless bool) ready {
	var out ready
	// The cache lists slices in no fixed order; the ports (and so the
	// export) must not depend on it.
	epSlices = slices.SortedFunc(slices.Values(epSlices), func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	seen := map[string]int{} // endpoint ID -> index in out.pods
	n := 0
	for _, sl := range epSlices {
		for _, ep := range sl.Endpoints {
			// The API defines a nil ready condition as ready.
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			id := endpointID(sl.AddressType, ep)
			if id == "" {
				continue
			}
			if headless && out.ports == nil {
				out.ports = slicePorts(sl)
			}
			if i, dup := seen[id]; dup {
				if headless {
					out.pods[i].Addresses = append(out.pods[i].Addresses, ep.Addresses...)
				}
				continue
			}
			n++
			seen[id] = len(out.pods)
			if !headless {
				continue
			}
			pod := exports.LocalPod{Addresses: slices.Clone(ep.Addresses)}
			if ep.Hostname != nil && *ep.Hostname != "" {
				pod.Hostname = *ep.Hostname
				out.hostnames = append(out.hostnames, pod.Hostname)
			}
			out.pods = append(out.pods, pod)
		}
	}
	sort.Strings(out.hostnames)
	out.hostnames = slices.Compact(out.hostnames)
	for i := range out.pods {
		slices.Sort(out.pods[i].Addresses)
		out.pods[i].Addresses = slices.Compact(out.pods[i].Addresses)
	}
	// Named pods first: past MaxHostnames the cut keeps every name that
	// importing clusters can resolve.
	slices.SortFunc(out.pods, func(a, b exports.LocalPod) int {
		if (a.Hostname == "") != (b.Hostname == "") {
			if a.Hostname == "" {
				return 1
			}
			return -1
		}
		if c := strings.Compare(a.Hostname, b.Hostname); c != 0 {
			return c
		}
		return slices.Compare(a.Addresses, b.Addresses)
	})
	if n > int(^uint32(0)>>1) {
		n = int(^uint32(0) >> 1)
	}
	out.count = int32(n)
	return out
}

// slicePorts are an EndpointSlice's ports, sorted as an export's are.
func slicePorts(sl *discoveryv1.EndpointSlice) []exports.Port {
	var out []exports.Port
	for _, p := range sl.Ports {
		if p.Port == nil {
			continue
		}
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		out = append(out, exports.Port{Name: deref(p.Name), Protocol: string(proto), Port: *p.Port, AppProtocol: deref(p.AppProtocol)})
	}
	slices.SortFunc(out, exports.ComparePorts)
	return out
}

func endpointID(at discoveryv1.AddressType, ep discoveryv1.Endpoint) string {
	if r := ep.TargetRef; r != nil {
		if r.UID != "" {
			return "uid/" + string(r.UID)
		}
		if r.Name != "" {
			return "ref/" + r.Kind + "/" + r.Namespace + "/" + r.Name
		}
	}
	if len(ep.Addresses) == 0 {
		return ""
	}
	return "addr/" + string(at) + "/" + ep.Addresses[0]
}

func portName(p corev1.ServicePort) string {
	if p.Name != "" {
		return p.Name
	}
	return fmt.Sprint(p.Port)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
