package exportwatch

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

// Refusal is why Ferry will not export a Service. The controller writes it
// into the ServiceExport's Valid condition, and `ferry export` refuses with
// it before writing anything, so both say the same thing from one rule.
type Refusal struct {
	// Reason is the Valid condition's reason, an exports.Reason* constant.
	Reason string
	// Problem says what is wrong, worded to follow the Service's name
	// ("Service ns/foo " + Problem).
	Problem string
	// Hint says what to do instead; empty when there is nothing to add.
	Hint string
}

// Message is the refusal as one sentence about the Service k.
func (r *Refusal) Message(k exports.Key) string {
	m := "Service " + k.String() + " " + r.Problem
	if r.Hint != "" {
		m += ": " + r.Hint
	}
	return m
}

// Exportable returns why svc cannot be exported, or nil when it can. nil
// svc is a Service that does not exist. It reads only the Service: the
// ServiceExport's own limits (exported metadata) are Compute's.
func Exportable(svc *corev1.Service) *Refusal {
	switch {
	case svc == nil:
		return &Refusal{Reason: exports.ReasonNoService, Problem: "does not exist"}
	case svc.DeletionTimestamp != nil:
		return &Refusal{Reason: exports.ReasonNoService, Problem: "is being deleted"}
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		return &Refusal{Reason: exports.ReasonInvalidServiceType,
			Problem: fmt.Sprintf("is of type ExternalName (an alias of %q), with no endpoints of its own for a gateway to carry traffic to", svc.Spec.ExternalName),
			Hint:    fmt.Sprintf("export a Service with a selector or EndpointSlices instead, or have the other clusters use %q directly", svc.Spec.ExternalName)}
	case svc.Labels[contract.LabelLink] != "":
		// Re-exporting a mirror would let exports loop between clusters.
		from := svc.Labels[contract.LabelSourceCluster]
		return &Refusal{Reason: exports.ReasonImportedService,
			Problem: fmt.Sprintf("is a mirror that Ferry imports from cluster %q", from),
			Hint:    fmt.Sprintf("export the original Service in %s instead", from)}
	case svc.Labels[contract.LabelClusterset] != "":
		of := svc.Namespace + "/" + svc.Labels[contract.LabelClusterset]
		return &Refusal{Reason: exports.ReasonImportedService,
			Problem: "is Ferry's clusterset Service of " + of,
			Hint:    fmt.Sprintf("export %s itself in each cluster that serves it", of)}
	}
	var other []string
	tcp := 0
	for _, p := range svc.Spec.Ports {
		switch p.Protocol {
		case corev1.ProtocolTCP, "": // "" is TCP, the API server's default
			tcp++
		default:
			other = append(other, fmt.Sprintf("%s %d", p.Protocol, p.Port))
		}
	}
	switch {
	case len(svc.Spec.Ports) == 0:
		return &Refusal{Reason: exports.ReasonNoTCPPorts,
			Problem: "has no ports, and Ferry's gateways carry TCP ports only",
			Hint:    fmt.Sprintf("add a TCP port to the Service (`kubectl -n %s edit svc %s`), then export it", svc.Namespace, svc.Name)}
	case tcp == 0:
		// Non-TCP ports beside a TCP one are no refusal: the export lists
		// them, and Compute warns that no gateway carries them.
		return &Refusal{Reason: exports.ReasonNoTCPPorts,
			Problem: fmt.Sprintf("has no TCP port (only %s), and Ferry's gateways carry TCP only", strings.Join(other, ", ")),
			Hint:    "add a TCP port to the Service to export it"}
	case len(svc.Spec.Ports) > exports.MaxPorts:
		return &Refusal{Reason: exports.ReasonTooLarge,
			Problem: fmt.Sprintf("has %d ports, and at most %d can be exported", len(svc.Spec.Ports), exports.MaxPorts),
			Hint:    "split it into Services with fewer ports"}
	}
	return nil
}
