package contract

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// Label and annotation keys. Every object Ferry writes carries LabelLink and
// LabelSourceCluster; Ferry never changes or deletes an object without them.
const (
	Prefix = "ferry.dev/"

	// LabelLink names the Link that owns an object.
	LabelLink = Prefix + "link"
	// LabelSourceCluster names the remote cluster an object stands for.
	LabelSourceCluster = Prefix + "source-cluster"
	// AnnotationRemoteService is the exported Service's name in the remote
	// cluster; a mirror's own name may be truncated.
	AnnotationRemoteService = Prefix + "remote-service"
	// AnnotationExportedKeys on a mirror Service records which of its label
	// and annotation keys Ferry copied from the export, so that keys the
	// remote stops exporting are removed while keys other controllers add
	// are kept.
	AnnotationExportedKeys = Prefix + "exported-keys"
	// AnnotationExportType on a mirror Service records the export's type
	// when it is not ClusterSetIP, so that a restarted controller recovers
	// it from the mirror.
	AnnotationExportType = Prefix + "export-type"
	// AnnotationExportCreated on a mirror Service is the creation time of
	// the remote ServiceExport (RFC 3339, UTC, seconds): under MCS the
	// oldest export wins a conflict, so the clusterset reconciler, which
	// sees only mirrors, needs it.
	AnnotationExportCreated = Prefix + "export-created"
	// AnnotationInternalTrafficPolicy and AnnotationTrafficDistribution on
	// a mirror Service record the exported Service's fields ("Cluster",
	// "PreferClose", ...) for its ServiceImport. They are annotations, not
	// the mirror's own fields: a mirror's endpoints are gateway pods, and
	// "Local" would make kube-proxy send a node's clients only to a gateway
	// pod on that node.
	AnnotationInternalTrafficPolicy = Prefix + "internal-traffic-policy"
	AnnotationTrafficDistribution   = Prefix + "traffic-distribution"
	// AnnotationUncarriedPorts on a mirror Service lists the export's ports
	// that no gateway carries (UDP, SCTP), "name/PROTOCOL/port" separated by
	// commas, so that its ServiceImport lists every port of the exported
	// Service, as the MCS API has it, while the mirror opens none of them.
	AnnotationUncarriedPorts = Prefix + "uncarried-ports"
	// AnnotationRemoteHostname on a host mirror names the one pod of a
	// headless export it stands for, by the hostname of its endpoint in
	// the exporting cluster (docs/headless.md).
	AnnotationRemoteHostname = Prefix + "remote-hostname"
	// AnnotationReadyEndpoints on a mirror Service is the exporting
	// cluster's count of ready endpoints behind the export, as its feed last
	// said (a count, never an address: requirement II). The gateway weighs a
	// clusterset service's clusters by it.
	AnnotationReadyEndpoints = Prefix + "ready-endpoints"
	// AnnotationAllowedClusters on a ServiceExport lists, comma-separated, the
	// clusters that may import it. Absent means every linked cluster.
	AnnotationAllowedClusters = Prefix + "allowed-clusters"

	// LabelClusterset marks the clusterset objects of exported service
	// <value> (its ServiceImport, clusterset Service and EndpointSlices):
	// Ferry never changes or deletes a clusterset object without it.
	LabelClusterset = Prefix + "clusterset"
	// AnnotationClusters on a clusterset Service lists, comma-separated and
	// sorted, the clusters it routes to.
	AnnotationClusters = Prefix + "clusters"
	// AnnotationSteering on a clusterset Service is the controller's
	// resolved steering policy for it (steering.Policy's form): the
	// accepted route's weights and the affinity's tiers. Absent or empty
	// is the default: one tier, weighed by ready endpoints.
	AnnotationSteering = Prefix + "steering"
	// AnnotationAffinity on a ServiceImport is the user's order of
	// preference among the clusters: "none", "local", or tiers such as
	// "local > eu-west, eu-central" (steering.ParseAffinity).
	AnnotationAffinity = Prefix + "affinity"
	// GatewayControllerName is the controllerName Ferry writes in the
	// status of the Gateway API routes it implements (those whose parent is
	// a ServiceImport), and the entries it owns there.
	GatewayControllerName = "ferry.dev/clusterset"

	// AnnotationGatewayIdentity on the gateway Service publishes the SPIFFE ID
	// the gateway presents, so `ferry link` can name it without reading a
	// Secret. Importers verify it in the TLS handshake, so a wrong value
	// fails closed.
	AnnotationGatewayIdentity = Prefix + "gateway-identity"

	// ManagedBy is Ferry's value for endpointslice.kubernetes.io/managed-by; a
	// label value, so it may not contain a slash (like the upstream
	// "endpointslice-controller.k8s.io").
	ManagedBy = "controller.ferry.dev"
)

// MaxNameLength is the longest Service name: a DNS-1035 label.
const MaxNameLength = 63

// hashLen is how many base32 characters of SHA-256 a truncated name keeps:
// 50 bits, so that collisions among even millions of names are negligible.
const hashLen = 10

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// MirrorName is the local Service that stands for export svc of cluster:
// "<svc>-<cluster>", or, when that exceeds 63 characters, its first 52
// characters and a hash of the full pair. The result is a valid DNS-1035
// label whenever svc is (Service names are).
func MirrorName(svc, cluster string) string {
	return fitName(svc+"-"+cluster, svc+"/"+cluster)
}

// fitName returns name when it fits a DNS-1035 label, else its first
// characters and a hash of key, the unambiguous form of what it joins.
func fitName(name, key string) string {
	if len(name) <= MaxNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(key))
	h := lowerBase32.EncodeToString(sum[:])[:hashLen]
	keep := strings.TrimRight(name[:MaxNameLength-hashLen-1], "-")
	return keep + "-" + h
}

// HostMirrorName is the local Service that stands for the pod with hostname
// host of headless export svc of cluster: "<svc>-<cluster>-<host>", or, when
// that exceeds 63 characters, its first 52 characters and a hash of the
// triple. It starts with svc, so it is a DNS-1035 label even when the
// hostname starts with a digit.
func HostMirrorName(svc, cluster, host string) string {
	return fitName(svc+"-"+cluster+"-"+host, svc+"/"+cluster+"/"+host)
}

// PodSliceName is the EndpointSlice, written with a headless ServiceImport,
// that lists what cluster offers of headless service svc: one endpoint per
// pod (or one for the whole cluster when its pods have no hostnames), under
// the MCS labels that DNS reads. EndpointSlice names may hold dots and
// Service names may not, so "<svc>.<cluster>" can never be the name of a
// mirror's, a host mirror's or a clusterset Service's slice. The IPv6 slice
// adds ".ipv6".
func PodSliceName(svc, cluster string, ipv6 bool) string {
	if ipv6 {
		return svc + "." + cluster + ".ipv6"
	}
	return svc + "." + cluster
}

// ClustersetCluster is the reserved cluster name whose "mirror" is the
// clusterset Service: no real cluster may take it.
const ClustersetCluster = "clusterset"

// ClustersetName is the clusterset Service of export svc:
// "<svc>-clusterset", truncated with a hash like a mirror name.
func ClustersetName(svc string) string { return MirrorName(svc, ClustersetCluster) }
