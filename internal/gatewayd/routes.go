package gatewayd

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/clusterset"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/gateway"
	"ferry.dev/ferry/internal/mirror"
	"ferry.dev/ferry/internal/steering"
	"ferry.dev/ferry/internal/tunnel"
)

// Remotes derives the remote gateways from Links: where each is and who it
// must be. A Link whose identity is not the gateway identity of the cluster
// it names is refused, so a typo cannot point west's traffic at a gateway
// that merely chains to the mesh root.
func Remotes(mesh string, links []*ferryv1.Link) (map[string]tunnel.Remote, []error) {
	out := map[string]tunnel.Remote{}
	var problems []error
	for _, l := range sortedLinks(links) {
		id, err := contract.LinkGatewayID(l.Spec.GatewayIdentity, l.Spec.ClusterName, mesh)
		if err != nil {
			problems = append(problems, fmt.Errorf("link %s: %w", l.Name, err))
			continue
		}
		if _, dup := out[l.Spec.ClusterName]; dup {
			problems = append(problems, fmt.Errorf("link %s: another Link already names cluster %s", l.Name, l.Spec.ClusterName))
			continue
		}
		out[l.Spec.ClusterName] = tunnel.Remote{Addresses: slices.Clone(l.Spec.GatewayAddresses), Identity: id}
	}
	return out, problems
}

// Routes derives the egress ports from Ferry's Services (docs/contracts.md),
// decoded by the readers that sit beside their writers (mirror.Read,
// clusterset.Read), and the port claims (internal/claims):
//
//   - each port of a mirror listens on its egress port and goes to (source
//     cluster, namespace, remote service, port); a host mirror's goes to
//     the one pod of that service it names (docs/headless.md), and a
//     headless mirror has none;
//   - each port of a clusterset Service listens on its egress port and goes
//     to (cluster, namespace, remote service, port) for every listed cluster
//     that a Link names and whose own mirror of the service is claimed, and
//     for that port (a cluster that does not export the port number gets
//     none of its connections), in the listed order, weighted by the ready-endpoint count that mirror
//     records (so the default split is one Service's over every cluster's
//     endpoints). The local cluster, when listed and when it exports the
//     service itself, is a local destination weighted by its own ready
//     endpoints: its share goes to them directly. Other listed clusters are
//     skipped and reported.
//
// Labels and annotations can be written by anyone who may create a Service,
// so no Service is believed on its own: a port opens only for the Service
// port its claim names (owner, namespace, name, port), a record only the
// controller writes. A Service that copies a mirror's labels, in any
// namespace, routes nothing and is reported. Only ports inside the
// controller's allocation ranges are ever opened. Objects that break the
// contract are skipped and reported; the rest still route. Services that
// are neither, and Services being deleted, are ignored silently.
func Routes(svcs []*corev1.Service, links []*ferryv1.Link, claimed claims.Table, local LocalExports, mirrorPorts, clustersetPorts contract.Range) ([]gateway.Route, []error) {
	clusterOf := map[string]string{}
	linksOf := map[string][]string{}
	for _, l := range sortedLinks(links) {
		clusterOf[l.Name] = l.Spec.ClusterName
		linksOf[l.Spec.ClusterName] = append(linksOf[l.Spec.ClusterName], l.Name)
	}
	// The claims, and the mirrors they vouch for at all (the same key with
	// Port 0, which no Service port is). A clusterset destination must be
	// a vouched mirror's cluster, so the clusterset Service's cluster list
	// cannot widen what the Links import; and a clusterset port goes only
	// to the clusters whose mirror is claimed for that port number (the
	// union of ports can hold one that some clusters lack, and their
	// ingress would refuse the stream).
	held := make(map[claims.Claim]bool, 2*len(claimed))
	for _, c := range claimed {
		held[c] = true
		held[claims.Claim{Owner: c.Owner, Namespace: c.Namespace, Service: c.Service}] = true
	}
	// mirrorHeld: a Link to cluster holds a claim on its mirror of svc for
	// port (0: for any port).
	mirrorHeld := func(cluster, ns, svc string, port int32) bool {
		for _, l := range linksOf[cluster] {
			if held[claims.Claim{Owner: claims.LinkOwner(l), Namespace: ns, Service: contract.MirrorName(svc, cluster), Port: port}] {
				return true
			}
		}
		return false
	}
	exposes := func(d gateway.Destination, ns, svc string, port int32) bool {
		if d.Local {
			return local.Exposes(ns, svc, port)
		}
		return mirrorHeld(d.Cluster, ns, svc, port)
	}
	// Each claimed mirror's ready-endpoint count weighs its cluster in a
	// clusterset route (gateway.Destination.Weight).
	readyOf := make(map[[2]string]uint32, len(svcs))
	for _, s := range svcs {
		link, ok := mirror.OwnerOf(s)
		if !ok || s.DeletionTimestamp != nil || !claimed.Vouches(s, claims.LinkOwner(link)) {
			continue
		}
		if n, ok, _ := mirror.ReadyEndpoints(s); ok {
			readyOf[[2]string{s.Namespace, s.Name}] = uint32(n)
		}
	}
	svcs = slices.Clone(svcs)
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	var routes []gateway.Route
	var problems []error
	used := make(map[int32]string, len(claimed))
	// addPorts opens one route per claimed port, each to every cluster of
	// dests.
	addPorts := func(kind string, owner claims.Owner, s *corev1.Service, remoteSvc, hostname string, ports []mirror.EgressPort, dests []gateway.Destination) {
		where := s.Namespace + "/" + s.Name
		for _, p := range ports {
			if !claimed.Holds(p.Egress, claims.Claim{Owner: owner, Namespace: s.Namespace, Service: s.Name, Port: p.Port}) {
				problems = append(problems, fmt.Errorf("%s %s port %d: egress port %d is not claimed for it (a Service Ferry did not write, or not yet)", kind, where, p.Port, p.Egress))
				continue
			}
			target := tunnel.Target{Namespace: s.Namespace, Service: remoteSvc, Port: int(p.Port), Hostname: hostname}
			if err := target.Validate(); err != nil {
				problems = append(problems, fmt.Errorf("%s %s port %d: %w", kind, where, p.Port, err))
				continue
			}
			if owner, dup := used[p.Egress]; dup {
				// Cannot happen while the claims hold one claim per port.
				problems = append(problems, fmt.Errorf("%s %s port %d: egress port %d already used by %s", kind, where, p.Port, p.Egress, owner))
				continue
			}
			used[p.Egress] = where
			r := gateway.Route{Port: int(p.Egress), Namespace: s.Namespace, Destinations: slices.Clone(dests), Clusterset: kind == "clusterset"}
			for i := range r.Destinations {
				r.Destinations[i].Target = target
			}
			routes = append(routes, r)
		}
	}
	for _, s := range svcs {
		if s.DeletionTimestamp != nil {
			// Being deleted: the controller no longer wants it, or never
			// did (a forged mirror kept Terminating by a finalizer). It
			// routes nothing; its claim, if it has one, is released once
			// it is gone.
			continue
		}
		if cs, errs, ok := clusterset.Read(s, clustersetPorts); ok || len(errs) > 0 {
			problems = append(problems, errs...)
			if !ok {
				continue
			}
			where := s.Namespace + "/" + s.Name
			policy, err := steering.ParsePolicy(s.Annotations[contract.AnnotationSteering])
			if err != nil {
				problems = append(problems, fmt.Errorf("clusterset %s: %s: %w; using the default split", where, contract.AnnotationSteering, err))
			}
			var dests []gateway.Destination
			for _, c := range cs.Clusters {
				switch {
				case c == local.Cluster && local.Cluster != "":
					if n, ok := local.ReadyEndpoints(s.Namespace, cs.Key.Service); ok {
						dests = append(dests, gateway.Destination{Cluster: c, Local: true, Weight: uint32(n)})
					} else {
						problems = append(problems, fmt.Errorf("clusterset %s: lists this cluster, which does not export %s; skipped", where, cs.Key.Service))
					}
				case len(linksOf[c]) == 0:
					problems = append(problems, fmt.Errorf("clusterset %s: cluster %s has no Link; skipped", where, c))
				case !mirrorHeld(c, s.Namespace, cs.Key.Service, 0):
					problems = append(problems, fmt.Errorf("clusterset %s: cluster %s has no claimed mirror of %s; skipped", where, c, cs.Key.Service))
				default:
					weight := readyOf[[2]string{s.Namespace, contract.MirrorName(cs.Key.Service, c)}]
					dests = append(dests, gateway.Destination{Cluster: c, Weight: weight})
				}
			}
			if len(dests) == 0 {
				problems = append(problems, fmt.Errorf("clusterset %s: no linked cluster in %s %q", where, contract.AnnotationClusters, s.Annotations[contract.AnnotationClusters]))
				continue
			}
			if dests = steer(policy, dests); len(dests) == 0 {
				problems = append(problems, fmt.Errorf("clusterset %s: its route weighs every cluster it can reach 0", where))
				continue
			}
			for _, p := range cs.Ports {
				var to []gateway.Destination
				for _, d := range dests {
					if exposes(d, s.Namespace, cs.Key.Service, p.Port) {
						to = append(to, d)
					}
				}
				if len(to) == 0 {
					problems = append(problems, fmt.Errorf("clusterset %s port %d: no cluster it routes to exports that port; not opened", where, p.Port))
					continue
				}
				addPorts("clusterset", claims.Clusterset, s, cs.Key.Service, "", []mirror.EgressPort{p}, to)
			}
			continue
		}
		m, errs, ok := mirror.Read(s, mirrorPorts)
		problems = append(problems, errs...)
		if !ok {
			continue
		}
		if clusterOf[m.Link] != m.Cluster {
			problems = append(problems, fmt.Errorf("mirror %s/%s: link %s does not exist or is not for cluster %s", s.Namespace, s.Name, m.Link, m.Cluster))
			continue
		}
		kind := "mirror"
		if m.Hostname != "" {
			kind = "host mirror"
		}
		// A headless mirror has no port: its pods' host mirrors route.
		addPorts(kind, claims.LinkOwner(m.Link), s, m.Export.Name, m.Hostname, m.Ports, []gateway.Destination{{Cluster: m.Cluster}})
	}
	slices.SortFunc(routes, func(a, b gateway.Route) int { return a.Port - b.Port })
	return routes, problems
}

// steer applies a clusterset service's policy to its destinations, whose
// Weight holds their ready endpoints: each gets the policy's weight and
// tier, and those its route weighs 0 are left out (the route says none).
func steer(p steering.Policy, dests []gateway.Destination) []gateway.Destination {
	clusters := make([]steering.Cluster, len(dests))
	for i, d := range dests {
		clusters[i] = steering.Cluster{Name: d.Cluster, Ready: d.Weight}
	}
	out := dests[:0]
	for i, sh := range steering.Apply(p, clusters) {
		if sh.Configured == 0 {
			continue
		}
		d := dests[i]
		d.Weight, d.Tier = sh.Weight, sh.Tier
		out = append(out, d)
	}
	return out
}

// LocalExports is what Routes knows of this cluster's own exports: its name
// and, per exported service, the count of ready endpoints and the ports. The
// zero value knows none.
type LocalExports struct {
	Cluster string
	Set     *exports.Set
}

// ReadyEndpoints returns the ready-endpoint count of the local export
// namespace/service, and whether this cluster exports it.
func (l LocalExports) ReadyEndpoints(namespace, service string) (int32, bool) {
	if l.Set == nil || !l.Set.Synced {
		return 0, false
	}
	e, ok := l.Set.Export(exports.Key{Namespace: namespace, Name: service})
	return e.ReadyEndpoints, ok
}

// Exposes reports whether the local export namespace/service has the TCP
// port.
func (l LocalExports) Exposes(namespace, service string, port int32) bool {
	if l.Set == nil || !l.Set.Synced {
		return false
	}
	e, ok := l.Set.Export(exports.Key{Namespace: namespace, Name: service})
	return ok && slices.ContainsFunc(e.Ports, func(p exports.Port) bool { return p.Port == port && p.Carried() })
}

// routesDiffer reports whether a local export's change from a to b (nil:
// not exported) can change a route: only whether it is exported, its ready
// endpoints and the ports it carries are read by Routes. Labels, hostnames
// and the rest of an export change often and route nothing.
func routesDiffer(a, b *exports.Export) bool {
	if a == nil || b == nil {
		return a != b
	}
	carried := func(e *exports.Export) []int32 {
		var out []int32
		for _, p := range e.Ports {
			if p.Carried() {
				out = append(out, p.Port)
			}
		}
		return out
	}
	return a.ReadyEndpoints != b.ReadyEndpoints || !slices.Equal(carried(a), carried(b))
}

func sortedLinks(links []*ferryv1.Link) []*ferryv1.Link {
	out := slices.Clone(links)
	slices.SortFunc(out, func(a, b *ferryv1.Link) int { return strings.Compare(a.Name, b.Name) })
	return out
}
