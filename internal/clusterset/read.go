package clusterset

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/mirror"
)

// Service is what a clusterset Service says, decoded: the gateway routes
// each port to the exported service in every listed cluster.
type Service struct {
	Key Key
	// Clusters are the clusters it routes to, in the written order, each
	// once.
	Clusters []string
	Ports    []mirror.EgressPort
}

// Read decodes a clusterset Service (one labelled contract.LabelClusterset)
// and checks it against what buildService writes: the label names the
// exported service, the remote-service annotation agrees with it, the name
// is that service's clusterset name, and it is not a mirror too (a forged
// hybrid must not be read either way). Ports that break the contract are
// left out and reported. ok is false when s is not a clusterset Service or
// cannot be decoded.
func Read(s *corev1.Service, r contract.Range) (out Service, problems []error, ok bool) {
	exported, isClusterset := s.Labels[contract.LabelClusterset]
	if !isClusterset {
		return Service{}, nil, false
	}
	where := s.Namespace + "/" + s.Name
	remote := s.Annotations[contract.AnnotationRemoteService]
	bad := func(format string, args ...any) (Service, []error, bool) {
		return Service{}, []error{fmt.Errorf("clusterset %s: "+format, append([]any{where}, args...)...)}, false
	}
	switch {
	case exported == "":
		return bad("empty %s label", contract.LabelClusterset)
	case s.Labels[contract.LabelLink] != "":
		return bad("carries both %s and %s", contract.LabelClusterset, contract.LabelLink)
	case remote == "":
		return bad("no %s annotation", contract.AnnotationRemoteService)
	case remote != exported:
		return bad("%s %q does not match %s %q", contract.AnnotationRemoteService, remote, contract.LabelClusterset, exported)
	case s.Name != contract.ClustersetName(exported):
		return bad("the clusterset Service of %s is named %s", exported, contract.ClustersetName(exported))
	}
	out.Key = Key{Namespace: s.Namespace, Service: exported}
	seen := map[string]bool{}
	for c := range strings.SplitSeq(s.Annotations[contract.AnnotationClusters], ",") {
		c = strings.TrimSpace(c)
		if c == "" || seen[c] {
			continue
		}
		seen[c] = true
		out.Clusters = append(out.Clusters, c)
	}
	out.Ports, problems = mirror.ReadPorts("clusterset", s, r)
	return out, problems, true
}
