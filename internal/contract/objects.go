package contract

import "strconv"

// The objects of an install, all in SystemNamespace (docs/contracts.md,
// "Objects of an install"). The daemons find each other and their Secrets
// by these names, and `ferry check` looks for them.
const (
	// SystemNamespace holds Ferry's own objects: Links, Deployments, Secrets.
	SystemNamespace = "ferry-system"
	// GatewayName names the gateway's Service, Deployment and service
	// account; other clusters' `ferry link` reads the Service.
	GatewayName = "ferry-gateway"
	// ControllerName names the controller's Deployment and service account,
	// and its leader-election Lease.
	ControllerName = "ferry-controller"
	// GatewayTLSSecret holds the gateway's certificate, written by the
	// controller's issuer and read by the gateway.
	GatewayTLSSecret = "ferry-gateway-tls"
	// IssuerSecret holds the cluster's intermediate CA.
	IssuerSecret = "ferry-issuer"
	// IngressPortName names the gateway Service's ingress port.
	IngressPortName = "ingress"
)

// LeaderElectionID is the controller's leader-election Lease.
const LeaderElectionID = ControllerName

// The port claims: the authoritative record of which Ferry Service holds
// which egress port (internal/claims, docs/security.md finding 1). Tenants
// cannot write SystemNamespace, so a Service that copies a mirror's labels
// holds and routes nothing unless a claim here names it.
const (
	// LabelPortClaims marks the ConfigMaps that hold port claims.
	LabelPortClaims = Prefix + "port-claims"
	// PortClaimsKey is the data key of a claims ConfigMap.
	PortClaimsKey = "claims"
	// PortClaimsShard is how many consecutive ports one ConfigMap records:
	// small enough that a full shard of the longest names stays far below
	// the API's 1 MiB object limit (500 × 210 bytes ≈ 103 KB), and a port
	// always lives in exactly one shard, so two writers that claim it
	// conflict on one resourceVersion.
	PortClaimsShard = 500
)

// PortClaimsShardOf is the first port of the shard that records port.
func PortClaimsShardOf(port int32) int32 { return port - port%PortClaimsShard }

// PortClaimsName names the ConfigMap of the shard that starts at first.
func PortClaimsName(first int32) string { return "ferry-ports-" + strconv.Itoa(int(first)) }

// CorefileStanza is what a cluster's Corefile needs for clusterset.local
// (docs/dns.md): the zone on the kubernetes plugin's line, and the
// multicluster option in its block. The rest of the server block stays as
// it is. `ferry check` looks for it in CoreDNS's ConfigMap, and the
// sandbox's CoreDNS runs it.
const CorefileStanza = `kubernetes cluster.local clusterset.local {
    multicluster clusterset.local
}`
