package feed

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/util/validation"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/feed/feedpb"
)

// toProto converts an export for the wire. AllowedClusters is enforced by
// the sender and never sent: an importer has no business knowing which other
// clusters may import. LocalPods and LocalPorts are never sent either: pod
// addresses mean nothing outside their cluster (requirement I).
func toProto(e *exports.Export) *feedpb.Export {
	p := &feedpb.Export{
		Namespace:                     e.Namespace,
		Name:                          e.Name,
		Type:                          feedpb.ExportType_EXPORT_TYPE_CLUSTER_SET_IP,
		SessionAffinity:               feedpb.SessionAffinity_SESSION_AFFINITY_NONE,
		SessionAffinityTimeoutSeconds: e.SessionAffinityTimeoutSeconds,
		Created:                       timestamppb.New(e.Created),
		Labels:                        e.Labels,
		Annotations:                   e.Annotations,
		ReadyEndpoints:                e.ReadyEndpoints,
		Hostnames:                     e.Hostnames,
		InternalTrafficPolicy:         e.InternalTrafficPolicy,
		TrafficDistribution:           e.TrafficDistribution,
	}
	if e.Type == exports.Headless {
		p.Type = feedpb.ExportType_EXPORT_TYPE_HEADLESS
	}
	if e.SessionAffinity == "ClientIP" {
		p.SessionAffinity = feedpb.SessionAffinity_SESSION_AFFINITY_CLIENT_IP
	}
	p.Ports = make([]*feedpb.Port, len(e.Ports))
	for i, port := range e.Ports {
		p.Ports[i] = &feedpb.Port{Name: port.Name, Protocol: port.Protocol, Port: port.Port, AppProtocol: port.AppProtocol}
	}
	return p
}

var errInvalidExport = errors.New("invalid export")

// fromProto converts and validates a received export. The server is
// authenticated, but its exports become objects in this cluster, so what
// would be rejected by the API server or misread by the importer is
// rejected here, with the export named.
func fromProto(p *feedpb.Export) (exports.Export, error) {
	k := exports.Key{Namespace: p.GetNamespace(), Name: p.GetName()}
	bad := func(format string, args ...any) (exports.Export, error) {
		return exports.Export{}, fmt.Errorf("%w %s: %s", errInvalidExport, k, fmt.Sprintf(format, args...))
	}
	if err := validateKey(k); err != nil {
		return bad("%v", err)
	}
	e := exports.Export{
		Key:                           k,
		SessionAffinityTimeoutSeconds: p.GetSessionAffinityTimeoutSeconds(),
		Labels:                        p.GetLabels(),
		Annotations:                   p.GetAnnotations(),
		ReadyEndpoints:                p.GetReadyEndpoints(),
		Hostnames:                     p.GetHostnames(),
		InternalTrafficPolicy:         p.GetInternalTrafficPolicy(),
		TrafficDistribution:           p.GetTrafficDistribution(),
	}
	switch e.InternalTrafficPolicy {
	case "", "Cluster", "Local":
	default:
		return bad("internal traffic policy %q", e.InternalTrafficPolicy)
	}
	if !exports.ValidTrafficDistribution(e.TrafficDistribution) {
		return bad("traffic distribution %q", e.TrafficDistribution)
	}
	switch p.GetType() {
	case feedpb.ExportType_EXPORT_TYPE_CLUSTER_SET_IP:
		e.Type = exports.ClusterSetIP
	case feedpb.ExportType_EXPORT_TYPE_HEADLESS:
		e.Type = exports.Headless
	default:
		return bad("unknown type %v", p.GetType())
	}
	switch p.GetSessionAffinity() {
	case feedpb.SessionAffinity_SESSION_AFFINITY_NONE:
		e.SessionAffinity = "None"
	case feedpb.SessionAffinity_SESSION_AFFINITY_CLIENT_IP:
		e.SessionAffinity = "ClientIP"
	default:
		return bad("unknown session affinity %v", p.GetSessionAffinity())
	}
	if e.ReadyEndpoints < 0 || e.SessionAffinityTimeoutSeconds < 0 {
		return bad("negative count")
	}
	if len(p.GetPorts()) == 0 || len(p.GetPorts()) > exports.MaxPorts {
		return bad("%d ports", len(p.GetPorts()))
	}
	if err := validatePorts(p.GetPorts()); err != nil {
		return bad("%v", err)
	}
	for _, port := range p.GetPorts() {
		e.Ports = append(e.Ports, exports.Port{Name: port.GetName(), Protocol: port.GetProtocol(), Port: port.GetPort(), AppProtocol: port.GetAppProtocol()})
	}
	if len(e.Hostnames) > exports.MaxHostnames {
		return bad("%d hostnames", len(e.Hostnames))
	}
	for _, h := range e.Hostnames {
		if errs := validation.IsDNS1123Label(h); len(errs) > 0 {
			return bad("hostname %q", h)
		}
	}
	if p.GetCreated() != nil {
		if err := p.GetCreated().CheckValid(); err != nil {
			return bad("created: %v", err)
		}
		e.Created = p.GetCreated().AsTime().UTC().Truncate(time.Second)
	}
	// Reserved keys would forge ownership labels or steer kube-proxy on
	// the mirror; the exporter drops them, and an importer must not rely
	// on that.
	size := 0
	for k, v := range e.Labels {
		if exports.ReservedKey(k) || len(validation.IsQualifiedName(k)) > 0 || len(validation.IsValidLabelValue(v)) > 0 {
			return bad("label %q", k)
		}
		size += len(k) + len(v)
	}
	for k, v := range e.Annotations {
		if exports.ReservedKey(k) || len(validation.IsQualifiedName(strings.ToLower(k))) > 0 {
			return bad("annotation %q", k)
		}
		size += len(k) + len(v)
	}
	if size > exports.MaxExportedMetadataBytes {
		return bad("labels and annotations take %d bytes", size)
	}
	if len(e.Labels) == 0 {
		e.Labels = nil
	}
	if len(e.Annotations) == 0 {
		e.Annotations = nil
	}
	if len(e.Hostnames) == 0 {
		e.Hostnames = nil
	}
	return e, nil
}

// validatePorts checks ports as the API server checks a Service's (and the
// mirror's EndpointSlice's): names are DNS-1123 labels, required when there
// is more than one port, and unique; port numbers are 1-65535 and unique;
// appProtocol is a qualified name. Only TCP is carried.
func validatePorts(ports []*feedpb.Port) error {
	names := make(map[string]bool, len(ports))
	numbers := make(map[portKey]bool, len(ports))
	for i, port := range ports {
		name, n := port.GetName(), port.GetPort()
		switch {
		case name == "" && len(ports) > 1:
			return fmt.Errorf("port %d (%d) has no name, required with %d ports", i, n, len(ports))
		case name != "":
			if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
				return fmt.Errorf("port %d name %.64q: %s", i, name, errs[0])
			}
			if names[name] {
				return fmt.Errorf("duplicate port name %q", name)
			}
			names[name] = true
		}
		switch port.GetProtocol() {
		case "TCP", "UDP", "SCTP":
		default:
			return fmt.Errorf("port %q: protocol %.16q is not TCP, UDP or SCTP", name, port.GetProtocol())
		}
		if errs := validation.IsValidPortNum(int(n)); len(errs) > 0 {
			return fmt.Errorf("port %q: %d: %s", name, n, errs[0])
		}
		if numbers[portKey{n, port.GetProtocol()}] {
			return fmt.Errorf("duplicate port %s/%d", port.GetProtocol(), n)
		}
		numbers[portKey{n, port.GetProtocol()}] = true
		if ap := port.GetAppProtocol(); ap != "" {
			if errs := validation.IsQualifiedName(ap); len(errs) > 0 {
				return fmt.Errorf("port %q appProtocol %.64q: %s", name, ap, errs[0])
			}
		}
	}
	return nil
}

// validateKey checks that a key names a namespace and a Service.
func validateKey(k exports.Key) error {
	if errs := validation.IsDNS1123Label(k.Namespace); len(errs) > 0 {
		return fmt.Errorf("namespace %q: %v", k.Namespace, errs[0])
	}
	if errs := validation.IsDNS1035Label(k.Name); len(errs) > 0 {
		return fmt.Errorf("service name %q: %v", k.Name, errs[0])
	}
	return nil
}

func keyToProto(k exports.Key) *feedpb.Key { return &feedpb.Key{Namespace: k.Namespace, Name: k.Name} }

func keyFromProto(p *feedpb.Key) (exports.Key, error) {
	k := exports.Key{Namespace: p.GetNamespace(), Name: p.GetName()}
	if err := validateKey(k); err != nil {
		return k, fmt.Errorf("%w: delete: %w", errInvalidExport, err)
	}
	return k, nil
}

// sameForImporter reports whether an importer would see a and b as equal:
// AllowedClusters is never sent, nor is what sameButLocal ignores.
func sameForImporter(a, b *exports.Export) bool {
	x, y := *a, *b
	x.AllowedClusters, y.AllowedClusters = nil, nil
	return sameButLocal(&x, &y)
}

// sameButLocal reports whether a and b differ at most in what stays in
// this cluster: LocalPods, LocalPorts and LocalClusterIPs.
func sameButLocal(a, b *exports.Export) bool {
	x, y := *a, *b
	x.LocalPods, y.LocalPods = nil, nil
	x.LocalPorts, y.LocalPorts = nil, nil
	x.LocalClusterIPs, y.LocalClusterIPs = nil, nil
	return x.Equal(&y)
}

// portKey is a port's number and protocol: a Service may use one number for
// TCP and UDP (DNS does).
type portKey struct {
	n     int32
	proto string
}
