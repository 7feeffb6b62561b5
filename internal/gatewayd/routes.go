package gatewayd

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/gateway"
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

// Routes derives the egress ports from Ferry's Services (docs/contracts.md):
//
//   - each port of a mirror (labelled ferry.dev/link, "Egress port
//     contract") listens on its targetPort, taken from mirrorPorts, and goes
//     to (source cluster, namespace, remote service, port);
//   - each port of a clusterset Service (labelled ferry.dev/clusterset,
//     "Clusterset services") listens on its targetPort, taken from
//     clustersetPorts, and goes to (cluster, namespace, remote service, port)
//     for every cluster of ferry.dev/clusters that a Link names, in that
//     order. Listed clusters without a Link are skipped and reported.
//
// Objects that break the contract are skipped and reported; the rest still
// route. Services with neither label are ignored silently.
//
// Labels can be written by anyone who may create a Service, so a forged
// "mirror" must not be able to take over a real one's port: when two claim
// the same egress port the older object keeps it (mirrors and clusterset
// Services alike), and only ports inside the controller's allocation ranges
// are ever opened.
func Routes(svcs []*corev1.Service, links []*ferryv1.Link, mirrorPorts, clustersetPorts contract.Range) ([]gateway.Route, []error) {
	clusterOf := map[string]string{}
	linked := map[string]bool{}
	for _, l := range links {
		clusterOf[l.Name] = l.Spec.ClusterName
		linked[l.Spec.ClusterName] = true
	}
	svcs = slices.Clone(svcs)
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	var routes []gateway.Route
	var problems []error
	used := map[int]string{}
	// addPorts opens one route per port of s, each to dests re-targeted at
	// that port.
	addPorts := func(kind string, s *corev1.Service, remoteSvc string, ports contract.Range, dests []gateway.Destination) {
		where := s.Namespace + "/" + s.Name
		for _, p := range s.Spec.Ports {
			egress := p.TargetPort.IntValue()
			if p.TargetPort.Type != intstr.Int || egress < int(ports.Min) || egress > int(ports.Max) || (p.Protocol != "" && p.Protocol != corev1.ProtocolTCP) {
				problems = append(problems, fmt.Errorf("%s %s port %d: targetPort %q is not an egress port in %d-%d", kind, where, p.Port, p.TargetPort.String(), ports.Min, ports.Max))
				continue
			}
			target := tunnel.Target{Namespace: s.Namespace, Service: remoteSvc, Port: int(p.Port)}
			if err := target.Validate(); err != nil {
				problems = append(problems, fmt.Errorf("%s %s port %d: %w", kind, where, p.Port, err))
				continue
			}
			if owner, dup := used[egress]; dup {
				problems = append(problems, fmt.Errorf("%s %s port %d: egress port %d already used by the older %s", kind, where, p.Port, egress, owner))
				continue
			}
			used[egress] = where
			r := gateway.Route{Port: egress, Destinations: make([]gateway.Destination, len(dests))}
			for i, d := range dests {
				r.Destinations[i] = gateway.Destination{Cluster: d.Cluster, Target: target}
			}
			routes = append(routes, r)
		}
	}
	for _, s := range svcs {
		link, cluster := s.Labels[contract.LabelLink], s.Labels[contract.LabelSourceCluster]
		exported, isClusterset := s.Labels[contract.LabelClusterset]
		remoteSvc := s.Annotations[contract.AnnotationRemoteService]
		where := s.Namespace + "/" + s.Name
		if isClusterset {
			dests, errs := clustersetDestinations(s, exported, remoteSvc, linked)
			problems = append(problems, errs...)
			if len(dests) > 0 {
				addPorts("clusterset", s, remoteSvc, clustersetPorts, dests)
			}
			continue
		}
		switch {
		case link == "" || cluster == "":
			continue // not Ferry's
		case remoteSvc == "":
			problems = append(problems, fmt.Errorf("mirror %s: no %s annotation", where, contract.AnnotationRemoteService))
			continue
		case clusterOf[link] != cluster:
			problems = append(problems, fmt.Errorf("mirror %s: link %s does not exist or is not for cluster %s", where, link, cluster))
			continue
		}
		addPorts("mirror", s, remoteSvc, mirrorPorts, []gateway.Destination{{Cluster: cluster}})
	}
	slices.SortFunc(routes, func(a, b gateway.Route) int { return a.Port - b.Port })
	return routes, problems
}

// clustersetDestinations checks a clusterset Service against the contract
// and returns its destinations (targets not yet filled in): the listed
// clusters that a Link names, in the listed order, each once.
func clustersetDestinations(s *corev1.Service, exported, remoteSvc string, linked map[string]bool) ([]gateway.Destination, []error) {
	where := s.Namespace + "/" + s.Name
	switch {
	case exported == "":
		return nil, []error{fmt.Errorf("clusterset %s: empty %s label", where, contract.LabelClusterset)}
	case s.Labels[contract.LabelLink] != "":
		// A Service cannot be both; refusing it keeps a forged hybrid
		// from being read either way.
		return nil, []error{fmt.Errorf("clusterset %s: carries both %s and %s", where, contract.LabelClusterset, contract.LabelLink)}
	case remoteSvc == "":
		return nil, []error{fmt.Errorf("clusterset %s: no %s annotation", where, contract.AnnotationRemoteService)}
	case remoteSvc != exported:
		return nil, []error{fmt.Errorf("clusterset %s: %s %q does not match %s %q", where, contract.AnnotationRemoteService, remoteSvc, contract.LabelClusterset, exported)}
	case s.Name != contract.ClustersetName(exported):
		return nil, []error{fmt.Errorf("clusterset %s: the clusterset Service of %s is named %s", where, exported, contract.ClustersetName(exported))}
	}
	var dests []gateway.Destination
	var problems []error
	seen := map[string]bool{}
	for _, c := range strings.Split(s.Annotations[contract.AnnotationClusters], ",") {
		c = strings.TrimSpace(c)
		if c == "" || seen[c] {
			continue
		}
		seen[c] = true
		if !linked[c] {
			problems = append(problems, fmt.Errorf("clusterset %s: cluster %s has no Link; skipped", where, c))
			continue
		}
		dests = append(dests, gateway.Destination{Cluster: c})
	}
	if len(dests) == 0 {
		problems = append(problems, fmt.Errorf("clusterset %s: no linked cluster in %s %q", where, contract.AnnotationClusters, s.Annotations[contract.AnnotationClusters]))
	}
	return dests, problems
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
