package gatewayd

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/gateway"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/mirror"
	"ferry.dev/ferry/internal/names"
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
		id, err := identity.ParseID(l.Spec.GatewayIdentity, mesh)
		if err != nil {
			problems = append(problems, fmt.Errorf("link %s: gateway identity: %w", l.Name, err))
			continue
		}
		if want := identity.GatewayID(mesh, l.Spec.ClusterName); id != want {
			problems = append(problems, fmt.Errorf("link %s: gateway identity %s is not cluster %s's gateway (%s)", l.Name, id, l.Spec.ClusterName, want))
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

// Routes derives the egress ports from mirror Services (docs/contracts.md,
// "Egress port contract"): each port of a mirror listens on its targetPort
// and goes to (source cluster, namespace, remote service, port). Objects that
// break the contract are skipped and reported; the rest still route.
//
// Labels can be written by anyone who may create a Service, so a forged
// "mirror" must not be able to take over a real one's port: when two claim
// the same egress port the older object keeps it, and only ports inside the
// controller's allocation range are ever opened.
func Routes(mirrors []*corev1.Service, links []*ferryv1.Link, ports mirror.Range) ([]gateway.Route, []error) {
	clusterOf := map[string]string{}
	for _, l := range links {
		clusterOf[l.Name] = l.Spec.ClusterName
	}
	svcs := slices.Clone(mirrors)
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	var routes []gateway.Route
	var problems []error
	used := map[int]string{}
	for _, s := range svcs {
		link, cluster := s.Labels[names.LabelLink], s.Labels[names.LabelSourceCluster]
		remoteSvc := s.Annotations[names.AnnotationRemoteService]
		where := s.Namespace + "/" + s.Name
		switch {
		case link == "" || cluster == "":
			continue // not Ferry's
		case remoteSvc == "":
			problems = append(problems, fmt.Errorf("mirror %s: no %s annotation", where, names.AnnotationRemoteService))
			continue
		case clusterOf[link] != cluster:
			problems = append(problems, fmt.Errorf("mirror %s: link %s does not exist or is not for cluster %s", where, link, cluster))
			continue
		}
		for _, p := range s.Spec.Ports {
			egress := p.TargetPort.IntValue()
			if p.TargetPort.Type != intstr.Int || egress < int(ports.Min) || egress > int(ports.Max) || (p.Protocol != "" && p.Protocol != corev1.ProtocolTCP) {
				problems = append(problems, fmt.Errorf("mirror %s port %d: targetPort %q is not an egress port in %d-%d", where, p.Port, p.TargetPort.String(), ports.Min, ports.Max))
				continue
			}
			target := tunnel.Target{Namespace: s.Namespace, Service: remoteSvc, Port: int(p.Port)}
			if err := target.Validate(); err != nil {
				problems = append(problems, fmt.Errorf("mirror %s port %d: %w", where, p.Port, err))
				continue
			}
			if owner, dup := used[egress]; dup {
				problems = append(problems, fmt.Errorf("mirror %s port %d: egress port %d already used by the older %s", where, p.Port, egress, owner))
				continue
			}
			used[egress] = where
			routes = append(routes, gateway.Route{Port: egress, Destinations: []gateway.Destination{{Cluster: cluster, Target: target}}})
		}
	}
	slices.SortFunc(routes, func(a, b gateway.Route) int { return a.Port - b.Port })
	return routes, problems
}

// IngressExports turns the export set into what ingress authorizes against.
func IngressExports(set map[exports.Key]exports.Export) []gateway.Export {
	out := make([]gateway.Export, 0, len(set))
	for _, e := range set {
		ge := gateway.Export{Namespace: e.Namespace, Service: e.Name, AllowedClusters: e.AllowedClusters}
		for _, p := range e.Ports {
			ge.Ports = append(ge.Ports, int(p.Port))
		}
		out = append(out, ge)
	}
	return out
}

func sortedLinks(links []*ferryv1.Link) []*ferryv1.Link {
	out := slices.Clone(links)
	slices.SortFunc(out, func(a, b *ferryv1.Link) int { return strings.Compare(a.Name, b.Name) })
	return out
}
