package mirror

import (
	"net/netip"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

// planned is one export on its way to becoming a mirror.
type planned struct {
	export *exports.Export
	name   string
	ports  []exports.Port // TCP only
	// hosts are the host mirrors of a headless export whose pods have
	// hostnames (docs/headless.md): the mirror is then headless and holds
	// no egress port; each host mirror holds one per port.
	hosts []host
}

// host is one host mirror: the Service that stands for one pod.
type host struct{ hostname, name string }

// egressNames are the Services of p that hold egress ports.
func (p planned) egressNames() []string {
	if len(p.hosts) == 0 {
		return []string{p.name}
	}
	out := make([]string, len(p.hosts))
	for i, h := range p.hosts {
		out[i] = h.name
	}
	return out
}

// Desired computes the desired state of one Link. It is pure: the same input
// gives the same output, and nothing in the input is modified.
func Desired(in Input) State {
	st := State{Ports: map[PortKey]int32{}}
	if in.Health == Stale {
		// Withdrawn: past the staleness limit, the remote's data is too old
		// to offer. Deleting the mirrors also frees their ports.
		return st
	}
	owned := ownedNames(in.Owned)
	var plan []planned
	var want []PortKey
	planNames := map[string]bool{} // ns/name of every Service planned so far
	for _, i := range sortedExports(in.Exports) {
		e := &in.Exports[i]
		if !in.Link.admits(e) {
			continue
		}
		if in.NamespaceExists != nil && !in.NamespaceExists(e.Namespace) {
			st.Problems = append(st.Problems, Problem{Export: e.Key, Reason: NamespaceMissing})
			continue
		}
		p := planned{export: e, name: contract.MirrorName(e.Name, in.Link.Cluster), ports: tcpPorts(e.Ports)}
		if len(p.ports) == 0 {
			st.Problems = append(st.Problems, Problem{Export: e.Key, Reason: NoTCPPorts})
			continue
		}
		if e.Type == exports.Headless {
			for _, h := range e.Hostnames {
				p.hosts = append(p.hosts, host{hostname: h, name: contract.HostMirrorName(e.Name, in.Link.Cluster, h)})
			}
		}
		if pr, clash := in.clashAny(owned, planNames, p); clash {
			st.Problems = append(st.Problems, pr)
			continue
		}
		plan = append(plan, p)
		for _, n := range p.egressNames() {
			planNames[e.Namespace+"/"+n] = true
			for _, port := range p.ports {
				want = append(want, PortKey{Namespace: e.Namespace, Service: n, Port: port.Port})
			}
		}
		planNames[e.Namespace+"/"+p.name] = true
	}

	claimed, current := Memory(in.Claimed, CurrentPorts(in.Owned.Services), in.Taken)
	alloc, exhausted := Allocate(in.Ports, HeldUntilGone(in.Taken, claimed, want), current, want)
	short := map[[2]string]bool{}
	for _, k := range exhausted {
		short[[2]string{k.Namespace, k.Service}] = true
	}
	v4, v6 := splitFamilies(in.Gateway)
	var ownedSvcs map[string]*corev1.Service // by namespace/name, built once if a headless export needs it
	for _, p := range plan {
		e := p.export
		if slices.ContainsFunc(p.egressNames(), func(n string) bool { return short[[2]string{e.Namespace, n}] }) {
			// All of an export or none: a StatefulSet with some pods
			// unreachable by name would fail in ways hard to see.
			st.Problems = append(st.Problems, Problem{Export: e.Key, Reason: PortsExhausted})
			continue
		}
		if len(p.hosts) > 0 {
			if ownedSvcs == nil {
				ownedSvcs = make(map[string]*corev1.Service, len(in.Owned.Services))
				for _, s := range in.Owned.Services {
					ownedSvcs[s.Namespace+"/"+s.Name] = s
				}
			}
			st.addHeadless(in, p, alloc, v4, v6, ownedSvcs)
			st.Imported++
			st.ImportedKeys = append(st.ImportedKeys, e.Key)
			continue
		}
		egress := make([]int32, len(p.ports))
		for i, port := range p.ports {
			k := PortKey{Namespace: e.Namespace, Service: p.name, Port: port.Port}
			egress[i] = alloc[k]
			st.Ports[k] = alloc[k]
		}
		ready := e.ReadyEndpoints > 0 && in.Health == Healthy
		st.Services = append(st.Services, buildService(in.Link, e, p.name, p.ports, egress))
		st.Slices = append(st.Slices, buildSlice(in.Link, e, p.name, p.ports, egress, discoveryv1.AddressTypeIPv4, v4, ready))
		if len(v6) > 0 {
			st.Slices = append(st.Slices, buildSlice(in.Link, e, p.name, p.ports, egress, discoveryv1.AddressTypeIPv6, v6, ready))
		}
		st.Imported++
		st.ImportedKeys = append(st.ImportedKeys, e.Key)
	}
	sortObjects(&st)
	sort.SliceStable(st.Problems, func(i, j int) bool {
		a, b := st.Problems[i], st.Problems[j]
		if a.Export != b.Export {
			return a.Export.String() < b.Export.String()
		}
		return a.Reason < b.Reason
	})
	return st
}

// sortedExports orders the indexes of exports by key without copying them.
func sortedExports(es []exports.Export) []int {
	idx := make([]int, len(es))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ka, kb := es[idx[a]].Key, es[idx[b]].Key
		if ka.Namespace != kb.Namespace {
			return ka.Namespace < kb.Namespace
		}
		return ka.Name < kb.Name
	})
	return idx
}

// admits applies the Link's import filters.
func (l Link) admits(e *exports.Export) bool {
	if len(l.Namespaces) > 0 && !slices.Contains(l.Namespaces, e.Namespace) {
		return false
	}
	if l.Selector != nil && !l.Selector.Matches(labels.Set(e.Labels)) {
		return false
	}
	return true
}

// tcpPorts keeps the ports the gateway can carry: TCP (or unset, which
// Kubernetes defaults to TCP).
func tcpPorts(ps []exports.Port) []exports.Port {
	out := make([]exports.Port, 0, len(ps))
	for _, p := range ps {
		if p.Carried() {
			out = append(out, p)
		}
	}
	return out
}

// SliceName is the name of a mirror's EndpointSlice for an address family:
// the mirror's own name for IPv4 and "<mirror>-ipv6" for IPv6. Names are
// fixed rather than generated so that a restart finds, and never duplicates,
// its slices.
func SliceName(mirror string, family discoveryv1.AddressType) string {
	if family == discoveryv1.AddressTypeIPv6 {
		return mirror + "-ipv6"
	}
	return mirror
}

// clash reports whether a name Ferry wants for e is held by an object that
// this Link does not own.
func (in *Input) clash(owned map[string]bool, key exports.Key, name string) (Problem, bool) {
	if in.Lookup == nil {
		return Problem{}, false
	}
	check := func(kind, objName string, get func(string, string) metav1.Object) (Problem, bool) {
		if owned[kind+"/"+key.Namespace+"/"+objName] {
			return Problem{}, false
		}
		obj := get(key.Namespace, objName)
		if obj == nil {
			return Problem{}, false
		}
		link, ok := OwnerOf(obj)
		if ok && link == in.Link.Name {
			return Problem{}, false
		}
		return Problem{Export: key, Reason: NameClash, Object: kind + " " + key.Namespace + "/" + objName, Holder: link}, true
	}
	if pr, c := check("Service", name, in.Lookup.Service); c {
		return pr, true
	}
	for _, fam := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
		if pr, c := check("EndpointSlice", SliceName(name, fam), in.Lookup.EndpointSlice); c {
			return pr, true
		}
	}
	return Problem{}, false
}

func ownedNames(o Objects) map[string]bool {
	m := make(map[string]bool, len(o.Services)+len(o.Slices))
	for _, s := range o.Services {
		m["Service/"+s.Namespace+"/"+s.Name] = true
	}
	for _, s := range o.Slices {
		m["EndpointSlice/"+s.Namespace+"/"+s.Name] = true
	}
	return m
}

// OwnerOf returns the Link that owns obj: Ferry owns an object only when it
// carries both ownership labels (docs/contracts.md).
func OwnerOf(obj metav1.Object) (link string, ok bool) {
	l := obj.GetLabels()
	link, hasLink := l[contract.LabelLink]
	_, hasCluster := l[contract.LabelSourceCluster]
	if !hasLink || !hasCluster || link == "" {
		return "", false
	}
	return link, true
}

// CurrentPorts reads the egress ports that services hold from their
// targetPorts: the API is the allocator's memory.
func CurrentPorts(services []*corev1.Service) map[PortKey]int32 {
	m := make(map[PortKey]int32, len(services))
	for _, s := range services {
		for _, p := range s.Spec.Ports {
			if p.TargetPort.IntVal != 0 && p.TargetPort.StrVal == "" {
				m[PortKey{Namespace: s.Namespace, Service: s.Name, Port: p.Port}] = p.TargetPort.IntVal
			}
		}
	}
	return m
}

// splitFamilies dedupes, sorts and splits gateway addresses by family,
// dropping anything that is not an IP.
func splitFamilies(addrs []string) (v4, v6 []string) {
	seen := map[netip.Addr]bool{}
	var ips []netip.Addr
	for _, a := range addrs {
		ip, err := netip.ParseAddr(strings.TrimSpace(a))
		if err != nil || seen[ip] {
			continue
		}
		seen[ip] = true
		ips = append(ips, ip)
	}
	slices.SortFunc(ips, func(a, b netip.Addr) int { return a.Compare(b) })
	for _, ip := range ips {
		if ip.Is4() || ip.Is4In6() {
			v4 = append(v4, ip.Unmap().String())
		} else {
			v6 = append(v6, ip.String())
		}
	}
	return v4, v6
}

func sortObjects(st *State) {
	sort.Slice(st.Services, func(i, j int) bool {
		a, b := st.Services[i], st.Services[j]
		return a.Namespace < b.Namespace || a.Namespace == b.Namespace && a.Name < b.Name
	})
	sort.Slice(st.Slices, func(i, j int) bool {
		a, b := st.Slices[i], st.Slices[j]
		return a.Namespace < b.Namespace || a.Namespace == b.Namespace && a.Name < b.Name
	})
}
