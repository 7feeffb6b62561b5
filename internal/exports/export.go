package exports

import (
	"strings"
	"time"
)

// Type is how an export is addressed, after the MCS ServiceImport types.
type Type string

const (
	// ClusterSetIP exports get one virtual address per importing cluster.
	ClusterSetIP Type = "ClusterSetIP"
	// Headless exports are addressed by their ready pods' hostnames.
	Headless Type = "Headless"
)

// Key names an export: namespace sameness means the same key in every cluster
// denotes the same service.
type Key struct {
	Namespace, Name string
}

func (k Key) String() string { return k.Namespace + "/" + k.Name }

// Port is one exported Service port.
type Port struct {
	Name string
	// Protocol is TCP, UDP or SCTP. Every port is listed on the
	// ServiceImport; Ferry's gateways carry TCP only.
	Protocol    string
	Port        int32
	AppProtocol string
}

// Carried reports whether the gateways carry p: TCP only.
func (p Port) Carried() bool { return p.Protocol == "" || p.Protocol == "TCP" }

// ComparePorts orders ports by number, then protocol: the order of
// Export.Ports.
func ComparePorts(a, b Port) int {
	if a.Port != b.Port {
		return int(a.Port) - int(b.Port)
	}
	return strings.Compare(a.Protocol, b.Protocol)
}

// Export is one exported Service as an importer sees it.
type Export struct {
	Key
	Type  Type
	Ports []Port
	// SessionAffinity is "None" or "ClientIP", with its timeout for ClientIP.
	SessionAffinity               string
	SessionAffinityTimeoutSeconds int32
	// InternalTrafficPolicy and TrafficDistribution are the Service's, as
	// the MCS API carries them to the ServiceImport ("" when unset).
	InternalTrafficPolicy string
	TrafficDistribution   string
	// Created is the ServiceExport's creation time: under MCS, the oldest
	// export wins a conflict.
	Created time.Time
	// Labels and Annotations are the ServiceExport's exportedLabels and
	// exportedAnnotations, copied onto mirrors.
	Labels      map[string]string
	Annotations map[string]string
	// ReadyEndpoints counts the Service's ready endpoints. An importer marks
	// its mirror ready only when this is positive.
	ReadyEndpoints int32
	// Hostnames are the ready pods' hostnames, for Headless exports only.
	Hostnames []string
	// AllowedClusters, when non-nil, lists the only clusters that may import
	// the export (ferry.dev/allowed-clusters). It is enforced by the exporting
	// gateway and never sent to importers.
	AllowedClusters []string
	// LocalPods are a Headless export's ready pods (at most MaxHostnames,
	// sorted), and LocalPorts the ports its EndpointSlices give them: this
	// cluster's own share of the clusterset DNS names
	// (<svc>.<ns>.svc.clusterset.local, <host>.<cluster>.<svc>...). Never
	// sent to importers: pod addresses stay in their cluster.
	LocalPods  []LocalPod
	LocalPorts []Port
	// LocalClusterIPs are the exported Service's own ClusterIPs (none for
	// a headless one): where this cluster's share of a headless clusterset
	// service is, when its own export lost the type conflict. Never sent.
	LocalClusterIPs []string
}

// LocalPod is one ready pod of a Headless export.
type LocalPod struct {
	// Hostname is the pod's, "" when it has none.
	Hostname  string
	Addresses []string
}

// AllowedFor reports whether cluster may import the export.
func (e *Export) AllowedFor(cluster string) bool {
	if e.AllowedClusters == nil {
		return true
	}
	for _, c := range e.AllowedClusters {
		if c == cluster {
			return true
		}
	}
	return false
}

// Of indexes exports by key: the map Publisher.Publish takes. A later export
// with the same key replaces an earlier one.
func Of(es ...Export) map[Key]Export {
	m := make(map[Key]Export, len(es))
	for _, e := range es {
		m[e.Key] = e
	}
	return m
}

// TCP is a shorthand for an export of namespace/name on the given TCP ports,
// ClusterSetIP, for wiring and tests that need nothing else of it.
func TCP(namespace, name string, ports ...int32) Export {
	e := Export{Key: Key{Namespace: namespace, Name: name}, Type: ClusterSetIP}
	for _, p := range ports {
		e.Ports = append(e.Ports, Port{Protocol: "TCP", Port: p})
	}
	return e
}
