package clusterset

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/mirror"
	"ferry.dev/ferry/internal/steering"
)

// Kinds, as Input.Foreign and Problem.Object name them.
const (
	KindService       = "Service"
	KindEndpointSlice = "EndpointSlice"
	KindServiceImport = "ServiceImport"
)

// Key is one clusterset service: an exported service in a namespace.
type Key struct{ Namespace, Service string }

func (k Key) String() string { return k.Namespace + "/" + k.Service }

// Reasons a clusterset service is not written.
const (
	// NameTaken: an object Ferry does not own holds one of its names.
	NameTaken = "NameTaken"
	// PortsExhausted: the clusterset port range is full.
	PortsExhausted = "PortsExhausted"
)

// Problem is a clusterset service that cannot be written.
type Problem struct {
	Key    Key
	Reason string
	// Object is "Kind ns/name" of the object in the way (NameTaken).
	Object string
}

// Input is everything Desired reads.
type Input struct {
	// Mirrors are the importer's mirror Services, of every Link; objects
	// without the ownership labels or the remote-service annotation are
	// ignored.
	Mirrors []*corev1.Service
	// MirrorSlices are the mirrors' EndpointSlices (readiness).
	MirrorSlices []*discoveryv1.EndpointSlice
	// Current are the existing clusterset Services (with the label): their
	// targetPorts keep egress ports stable, their ClusterIPs fill
	// ServiceImport spec.ips.
	Current []*corev1.Service
	// Gateway are the ready addresses of the local gateway pods.
	Gateway []string
	// Ports is the clusterset egress port range.
	Ports contract.Range
	// LocalCluster is this cluster's name, and Local what it exports
	// itself: a service that some Link imports and this cluster exports
	// too has this cluster among its clusters (the MCS API's clusterset
	// includes every exporting cluster), and the gateway sends that share
	// to the local endpoints directly.
	LocalCluster string
	Local        map[exports.Key]exports.Export
	// Claimed is the egress port each clusterset port holds in the port
	// claims, and Taken the ports others hold in them (see mirror.Memory).
	// Nil Claimed: no record; the Services' targetPorts are the memory.
	Claimed map[mirror.PortKey]int32
	Taken   mirror.Taken
	// Foreign reports whether an object of kind exists at ns/name without
	// contract.LabelClusterset. Nil means none does.
	Foreign func(kind, namespace, name string) bool
	// Routes are the cluster's Gateway API routes, and Affinity each
	// ServiceImport's affinity annotation: the steering policy
	// (internal/steering) recorded on each clusterset Service.
	Routes   steering.Routes
	Affinity map[Key]string
}

// State is the desired clusterset objects, sorted by namespace and name.
type State struct {
	Imports  []*mcsv1beta1.ServiceImport
	Services []*corev1.Service
	Slices   []*discoveryv1.EndpointSlice
	Problems []Problem
	// Steering is what the routes and affinities resolve to: the route
	// statuses to write, and the affinities that do not parse.
	Steering steering.Resolution
	// Now is when a condition that changes status changed, for Diff: the
	// reconciler sets it; Desired, which is pure, leaves it zero.
	Now metav1.Time
}

// source is one mirror standing for a Key.
type source struct {
	cluster string
	svc     *corev1.Service
	ready   bool
	// headless: the export is Headless; its pods are named here when
	// the mirror is headless too (hosts, one per host mirror), and
	// otherwise reached together at the mirror's address.
	headless bool
	hosts    []hostAddr
	// created is the export's creation time: the oldest export wins.
	created time.Time
	// local: this cluster's own export (localSource).
	local bool
	// labels and annotations are the export's exported ones.
	labels, annotations map[string]string
	// uncarried are the export's ports that no gateway carries (UDP,
	// SCTP): listed on the ServiceImport only.
	uncarried []corev1.ServicePort
	// podPorts are a local headless export's pods' own ports: its hosts
	// are the pods themselves, not host mirrors that translate ports.
	podPorts []exports.Port
}

// hostAddr is one named pod of a source: its host mirror's addresses.
type hostAddr struct {
	hostname string
	ips      []string
	ready    bool
}

// winner is the source whose properties the clusterset uses: the oldest
// export, ties broken by cluster name, as the exporting side's Conflict
// condition (exportwatch) decides.
func winner(srcs []source) source {
	return slices.MinFunc(srcs, func(a, b source) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.cluster, b.cluster)
	})
}

// byAge returns the sources oldest first (ties: cluster name), the order
// in which their ports enter the union.
func byAge(srcs []source) []source {
	out := slices.Clone(srcs)
	slices.SortStableFunc(out, func(a, b source) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.cluster, b.cluster)
	})
	return out
}

// Desired computes the clusterset objects for the mirrors in. It is pure:
// the same input gives the same output, and the input is not modified.
func Desired(in Input) State {
	var st State
	groups := group(in)
	keys := make([]Key, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })

	current := map[string]*corev1.Service{}
	for _, s := range in.Current {
		current[s.Namespace+"/"+s.Name] = s
	}
	var plans, headless []plan
	var want []mirror.PortKey
	for _, k := range keys {
		if obj, taken := foreign(in, k); taken {
			st.Problems = append(st.Problems, Problem{Key: k, Reason: NameTaken, Object: obj})
			continue
		}
		all := unionPorts(byAge(groups[k]))
		p := plan{key: k, srcs: groups[k], ports: tcpOnly(all), importPorts: all}
		if len(p.ports) == 0 {
			continue
		}
		p.headless = winner(p.srcs).headless
		if p.headless {
			// No clusterset IP: DNS names the pods (or each cluster's
			// mirror), so no Service and no egress port.
			headless = append(headless, p)
			continue
		}
		plans = append(plans, p)
		for _, sp := range p.ports {
			want = append(want, mirror.PortKey{Namespace: k.Namespace, Service: contract.ClustersetName(k.Service), Port: sp.Port})
		}
	}
	held, keep := mirror.Memory(in.Claimed, mirror.CurrentPorts(in.Current), in.Taken)
	alloc, exhausted := mirror.Allocate(in.Ports, mirror.HeldUntilGone(in.Taken, held, want), keep, want)
	short := map[Key]bool{}
	for _, pk := range exhausted {
		for _, p := range plans {
			if p.key.Namespace == pk.Namespace && contract.ClustersetName(p.key.Service) == pk.Service {
				short[p.key] = true
			}
		}
	}
	v4, v6 := splitFamilies(in.Gateway)
	st.Steering = resolveSteering(in, plans, current)
	for _, p := range plans {
		clusters, ready := p.clusters()
		if short[p.key] {
			st.Problems = append(st.Problems, Problem{Key: p.key, Reason: PortsExhausted})
			// No Service, no IPs; the ServiceImport says why.
			si := buildImport(p.key, p.importPorts, clusters, winner(p.srcs), nil)
			si.Status.Conditions = []metav1.Condition{exhaustedCondition(in.Ports, len(p.ports))}
			st.Imports = append(st.Imports, si)
			continue
		}
		name := contract.ClustersetName(p.key.Service)
		for i := range p.ports {
			p.ports[i].TargetPort = intstr.FromInt32(alloc[mirror.PortKey{Namespace: p.key.Namespace, Service: name, Port: p.ports[i].Port}])
		}
		svc := buildService(p.key, name, p.ports, clusters)
		if pol := st.Steering.Policies[steering.Key{Namespace: p.key.Namespace, Name: p.key.Service}]; !pol.IsDefault() {
			svc.Annotations[contract.AnnotationSteering] = pol.String()
		} else if cur := current[p.key.Namespace+"/"+name]; cur != nil && cur.Annotations[contract.AnnotationSteering] != "" {
			svc.Annotations[contract.AnnotationSteering] = "" // cleared; absent would leave it
		}
		st.Services = append(st.Services, svc)
		st.Slices = append(st.Slices, buildSlice(p.key, name, p.ports, discoveryv1.AddressTypeIPv4, v4, ready))
		if len(v6) > 0 {
			st.Slices = append(st.Slices, buildSlice(p.key, name, p.ports, discoveryv1.AddressTypeIPv6, v6, ready))
		}
		si := buildImport(p.key, p.importPorts, clusters, winner(p.srcs), current[p.key.Namespace+"/"+name])
		si.Status.Conditions = []metav1.Condition{readyCondition(si)}
		st.Imports = append(st.Imports, si)
	}
	for _, p := range headless {
		st.addHeadless(p, in.Foreign)
	}
	sortState(&st)
	return st
}

// clusters are the clusters p's clusterset Service and ServiceImport list,
// and ready whether any of them has a ready endpoint.
func (p plan) clusters() (clusters []string, ready bool) {
	for _, s := range p.srcs {
		if s.headless && len(s.hosts) > 0 && !s.local {
			// Its pods are named, each behind a host mirror: it has no
			// mirror to send a share of the clusterset address to
			// (docs/headless.md). This cluster's own pods are reached
			// directly either way.
			continue
		}
		clusters = append(clusters, s.cluster)
		ready = ready || s.ready
	}
	return clusters, ready
}

// plan is one clusterset service to write: its sources and ports.
type plan struct {
	key  Key
	srcs []source
	// ports are the clusterset Service's (TCP), importPorts the
	// ServiceImport's (every protocol).
	ports, importPorts []corev1.ServicePort
	headless           bool
}

// resolveSteering resolves the routes and affinities of the services
// planned (those with a PortsExhausted problem too: their routes' status
// does not depend on ports), each with the policy its clusterset Service
// records now.
func resolveSteering(in Input, plans []plan, current map[string]*corev1.Service) steering.Resolution {
	svcs := make([]steering.Service, 0, len(plans))
	for _, p := range plans {
		s := steering.Service{Key: steering.Key{Namespace: p.key.Namespace, Name: p.key.Service}, Affinity: in.Affinity[p.key]}
		if cur := current[p.key.Namespace+"/"+contract.ClustersetName(p.key.Service)]; cur != nil {
			// What it records now; one that does not parse holds nothing.
			s.Current, _ = steering.ParsePolicy(cur.Annotations[contract.AnnotationSteering])
		}
		for _, src := range p.srcs {
			s.Clusters = append(s.Clusters, src.cluster)
			if src.cluster == in.LocalCluster {
				s.Local = src.cluster
			}
		}
		for _, sp := range p.ports {
			s.Ports = append(s.Ports, sp.Port)
		}
		svcs = append(svcs, s)
	}
	return steering.Resolve(svcs, in.Routes, ControllerName)
}

// group collects the mirrors by the Key they stand for, each Key's sources
// sorted by cluster (one per cluster), with their readiness.
func group(in Input) map[Key][]source {
	ready := map[string]bool{}
	for _, s := range in.MirrorSlices {
		for _, ep := range s.Endpoints {
			if ptr.Deref(ep.Conditions.Ready, true) && !ptr.Deref(ep.Conditions.Terminating, false) {
				ready[s.Namespace+"/"+s.Labels[discoveryv1.LabelServiceName]] = true
			}
		}
	}
	out := map[Key][]source{}
	hosts := map[[3]string][]hostAddr{} // (namespace, service, cluster)
	for _, m := range in.Mirrors {
		if _, owned := mirror.OwnerOf(m); !owned || m.DeletionTimestamp != nil {
			continue
		}
		cluster := m.Labels[contract.LabelSourceCluster]
		remote := m.Annotations[contract.AnnotationRemoteService]
		if cluster == "" || remote == "" || cluster == contract.ClustersetCluster {
			continue
		}
		if h, isHost := mirror.Hostname(m); isHost {
			k := [3]string{m.Namespace, remote, cluster}
			hosts[k] = append(hosts[k], hostAddr{hostname: h, ips: mirror.ClusterIPs(m), ready: ready[m.Namespace+"/"+m.Name]})
			continue
		}
		k := Key{Namespace: m.Namespace, Service: remote}
		created, _ := mirror.ExportCreated(m)
		lbls, anns := mirror.ExportedMetadata(m)
		var uncarried []corev1.ServicePort
		for _, p := range mirror.ParseUncarried(m.Annotations[contract.AnnotationUncarriedPorts]) {
			uncarried = append(uncarried, corev1.ServicePort{Name: p.Name, Protocol: corev1.Protocol(p.Protocol), Port: p.Port})
		}
		out[k] = append(out[k], source{
			cluster: cluster, svc: m, ready: ready[m.Namespace+"/"+m.Name],
			headless: m.Annotations[contract.AnnotationExportType] == string(exports.Headless),
			created:  created, labels: lbls, annotations: anns, uncarried: uncarried,
		})
	}
	for k, srcs := range out {
		for i := range srcs {
			if srcs[i].headless && srcs[i].svc.Spec.ClusterIP == corev1.ClusterIPNone {
				hs := hosts[[3]string{k.Namespace, k.Service, srcs[i].cluster}]
				slices.SortFunc(hs, func(a, b hostAddr) int { return strings.Compare(a.hostname, b.hostname) })
				srcs[i].hosts = hs
			}
		}
	}
	// Every cluster of the clusterset holds the ServiceImport of a service
	// that any cluster exports, the exporting ones included (MCS).
	if in.LocalCluster != "" {
		for ek, e := range in.Local {
			k := Key{Namespace: ek.Namespace, Service: ek.Name}
			out[k] = append(out[k], localSource(in.LocalCluster, e))
		}
	}
	for k, srcs := range out {
		sort.SliceStable(srcs, func(i, j int) bool {
			if srcs[i].cluster != srcs[j].cluster {
				return srcs[i].cluster < srcs[j].cluster
			}
			return srcs[i].svc.Name < srcs[j].svc.Name
		})
		// Two Links to one cluster: the cluster is one destination.
		out[k] = slices.CompactFunc(srcs, func(a, b source) bool { return a.cluster == b.cluster })
	}
	return out
}

// localSource stands for this cluster's own export of a service: a Service
// with the export's ports, so the union of ports covers them too.
func localSource(cluster string, e exports.Export) source {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: e.Name, Annotations: map[string]string{}}}
	if e.SessionAffinity == string(corev1.ServiceAffinityClientIP) {
		svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		svc.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(e.SessionAffinityTimeoutSeconds)}}
	}
	if e.InternalTrafficPolicy != "" {
		svc.Annotations[contract.AnnotationInternalTrafficPolicy] = e.InternalTrafficPolicy
	}
	if e.TrafficDistribution != "" {
		svc.Annotations[contract.AnnotationTrafficDistribution] = e.TrafficDistribution
	}
	for _, p := range e.Ports {
		sp := corev1.ServicePort{Name: p.Name, Protocol: corev1.Protocol(p.Protocol), Port: p.Port}
		if p.AppProtocol != "" {
			sp.AppProtocol = ptr.To(p.AppProtocol)
		}
		svc.Spec.Ports = append(svc.Spec.Ports, sp)
	}
	src := source{cluster: cluster, svc: svc, ready: e.ReadyEndpoints > 0, headless: e.Type == exports.Headless, created: e.Created, local: true,
		labels: e.Labels, annotations: e.Annotations}
	if src.headless {
		// This cluster's pods are reached directly, named or not.
		for _, p := range e.LocalPods {
			src.hosts = append(src.hosts, hostAddr{hostname: p.Hostname, ips: p.Addresses, ready: true})
		}
		src.podPorts = e.LocalPorts
	} else {
		// Reached at its own ClusterIP when a headless export wins.
		svc.Spec.ClusterIPs = e.LocalClusterIPs
	}
	return src
}

// foreign reports the first of k's names held by an object without the
// clusterset label.
func foreign(in Input, k Key) (string, bool) {
	if in.Foreign == nil {
		return "", false
	}
	name := contract.ClustersetName(k.Service)
	for _, c := range []struct{ kind, name string }{
		{KindServiceImport, k.Service},
		{KindService, name},
		{KindEndpointSlice, mirror.SliceName(name, discoveryv1.AddressTypeIPv4)},
		{KindEndpointSlice, mirror.SliceName(name, discoveryv1.AddressTypeIPv6)},
	} {
		if in.Foreign(c.kind, k.Namespace, c.name) {
			return c.kind + " " + k.Namespace + "/" + c.name, true
		}
	}
	return "", false
}

// unionPorts is the union of the sources' ports by (protocol, number),
// sources given oldest first: a port takes the name and appProtocol of the
// oldest export that has it, and a younger export's port whose name an
// older one gives to another port is left out (the MCS conflict
// resolution: the oldest export's definition wins; both exports carry
// Conflict). Sorted by number, then protocol. Names are made unique, and
// non-empty when there are several ports, as a Service requires. Ports no
// gateway carries (UDP, SCTP) are in the union, for the ServiceImport; the
// clusterset Service takes the TCP ones (tcpOnly).
func unionPorts(srcs []source) []corev1.ServicePort {
	type pk struct {
		proto corev1.Protocol
		n     int32
	}
	byPort := map[pk]corev1.ServicePort{}
	named := map[string]bool{}
	for _, s := range srcs {
		var mine []corev1.ServicePort
		for _, p := range slices.Concat(s.svc.Spec.Ports, s.uncarried) {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if _, seen := byPort[pk{proto, p.Port}]; seen || (p.Name != "" && named[p.Name]) {
				continue
			}
			mine = append(mine, corev1.ServicePort{Name: p.Name, Protocol: proto, Port: p.Port, AppProtocol: p.AppProtocol})
		}
		// One export's own ports never shut each other out.
		for _, p := range mine {
			byPort[pk{p.Protocol, p.Port}] = p
			if p.Name != "" {
				named[p.Name] = true
			}
		}
	}
	out := make([]corev1.ServicePort, 0, len(byPort))
	for _, p := range byPort {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Protocol < out[j].Protocol
	})
	used := map[string]bool{}
	for i := range out {
		if out[i].Name == "" && len(out) == 1 {
			continue
		}
		if out[i].Name == "" || used[out[i].Name] {
			out[i].Name = fmt.Sprintf("%s-%d", strings.ToLower(string(out[i].Protocol)), out[i].Port)
		}
		used[out[i].Name] = true
	}
	return out
}

// tcpOnly keeps the ports the gateways carry.
func tcpOnly(ports []corev1.ServicePort) []corev1.ServicePort {
	var out []corev1.ServicePort
	for _, p := range ports {
		if p.Protocol == corev1.ProtocolTCP {
			out = append(out, p)
		}
	}
	return out
}

// labels marks a clusterset object of svc.
func labels(svc string) map[string]string {
	return map[string]string{contract.LabelClusterset: svc}
}

func buildService(k Key, name string, ports []corev1.ServicePort, clusters []string) *corev1.Service {
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: k.Namespace, Name: name, Labels: labels(k.Service),
			Annotations: map[string]string{
				contract.AnnotationRemoteService: k.Service,
				contract.AnnotationClusters:      strings.Join(clusters, ","),
			},
		},
		Spec: corev1.ServiceSpec{
			Type:            corev1.ServiceTypeClusterIP,
			SessionAffinity: corev1.ServiceAffinityNone,
			Ports:           slices.Clone(ports),
		},
	}
}

func buildSlice(k Key, name string, ports []corev1.ServicePort, family discoveryv1.AddressType, addrs []string, ready bool) *discoveryv1.EndpointSlice {
	l := labels(k.Service)
	l[discoveryv1.LabelServiceName] = name
	l[discoveryv1.LabelManagedBy] = contract.ManagedBy
	s := &discoveryv1.EndpointSlice{
		TypeMeta:    metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta:  metav1.ObjectMeta{Namespace: k.Namespace, Name: mirror.SliceName(name, family), Labels: l},
		AddressType: family,
	}
	for _, p := range ports {
		ep := discoveryv1.EndpointPort{Name: ptr.To(p.Name), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(p.TargetPort.IntVal)}
		if p.AppProtocol != nil {
			ep.AppProtocol = ptr.To(*p.AppProtocol)
		}
		s.Ports = append(s.Ports, ep)
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{a},
			Conditions: discoveryv1.EndpointConditions{
				Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false),
			},
		})
	}
	return s
}

// splitFamilies dedupes, sorts and splits addresses by family, dropping
// anything that is not an IP.
func splitFamilies(addrs []string) (v4, v6 []string) {
	var ips []netip.Addr
	for _, a := range addrs {
		if ip, err := netip.ParseAddr(strings.TrimSpace(a)); err == nil {
			ips = append(ips, ip.Unmap())
		}
	}
	slices.SortFunc(ips, func(a, b netip.Addr) int { return a.Compare(b) })
	ips = slices.Compact(ips)
	for _, ip := range ips {
		if ip.Is4() {
			v4 = append(v4, ip.String())
		} else {
			v6 = append(v6, ip.String())
		}
	}
	return v4, v6
}
