package contract

import (
	"fmt"

	"ferry.dev/ferry/internal/identity"
)

// ValidateClusterName is the one rule for a cluster's name, wherever it
// comes from (flags, Links, allowed-cluster lists, certificates): a DNS
// label, because it becomes the first label of a trust domain and a suffix
// of mirror names, and not the reserved "clusterset", whose "mirror" name is
// the clusterset Service's.
func ValidateClusterName(s string) error {
	if err := identity.ValidateDNSLabel(s); err != nil {
		return fmt.Errorf("cluster name %q: %w", s, err)
	}
	if s == ClustersetCluster {
		return fmt.Errorf("cluster name %q is reserved (clusterset Services are named <svc>-%s)", s, s)
	}
	return nil
}

// Identities of Ferry's two daemons. Both run in SystemNamespace under a
// service account named after the daemon.
const (
	DefaultMeshDomain        = "ferry.local"
	GatewayServiceAccount    = GatewayName
	ControllerServiceAccount = ControllerName
)

// GatewayID is the identity of cluster's gateway.
func GatewayID(meshDomain, cluster string) identity.ID {
	return identity.ID{MeshDomain: meshDomain, Cluster: cluster, Namespace: SystemNamespace, ServiceAccount: GatewayServiceAccount}
}

// ControllerID is the identity of cluster's controller.
func ControllerID(meshDomain, cluster string) identity.ID {
	return identity.ID{MeshDomain: meshDomain, Cluster: cluster, Namespace: SystemNamespace, ServiceAccount: ControllerServiceAccount}
}

// IsGateway reports whether id is the gateway identity of its own cluster.
func IsGateway(id identity.ID) bool { return id == GatewayID(id.MeshDomain, id.Cluster) }

// IsController reports whether id is the controller identity of its own
// cluster.
func IsController(id identity.ID) bool { return id == ControllerID(id.MeshDomain, id.Cluster) }

// LinkGatewayID is the one rule for the gateway identity a Link may name
// (spec.gatewayIdentity) for the cluster it links to (spec.clusterName): a
// Ferry SPIFFE ID that is exactly that cluster's gateway, in meshDomain. A
// looser rule would let a typo point traffic at any workload that merely
// chains to the mesh root. meshDomain "" takes the mesh from the ID itself,
// for callers that do not know the local mesh (linkgen reading a remote
// install); every caller that decides trust passes it.
func LinkGatewayID(gatewayIdentity, clusterName, meshDomain string) (identity.ID, error) {
	if err := ValidateClusterName(clusterName); err != nil {
		return identity.ID{}, fmt.Errorf("clusterName: %w", err)
	}
	var id identity.ID
	var err error
	if meshDomain == "" {
		id, err = identity.ParseIDInferMesh(gatewayIdentity)
	} else {
		id, err = identity.ParseID(gatewayIdentity, meshDomain)
	}
	if err != nil {
		return identity.ID{}, fmt.Errorf("gatewayIdentity: %w", err)
	}
	switch {
	case id.Cluster != clusterName:
		return identity.ID{}, fmt.Errorf("gatewayIdentity %s belongs to cluster %q, not %q", id, id.Cluster, clusterName)
	case !IsGateway(id):
		return identity.ID{}, fmt.Errorf("gatewayIdentity %s is not a gateway (want %s)", id, GatewayID(id.MeshDomain, id.Cluster))
	}
	return id, nil
}

// AllowRemote returns an authorizer for ServerTLSConfig that admits Ferry
// system identities with one of serviceAccounts from any cluster but
// local: a cluster never accepts its own trust domain on ingress.
func AllowRemote(local string, serviceAccounts ...string) func(identity.ID) error {
	return func(id identity.ID) error {
		if id.Cluster == local {
			return fmt.Errorf("%s is the local cluster", id.Cluster)
		}
		if id.Namespace != SystemNamespace {
			return fmt.Errorf("namespace %q is not %q", id.Namespace, SystemNamespace)
		}
		for _, sa := range serviceAccounts {
			if id.ServiceAccount == sa {
				return nil
			}
		}
		return fmt.Errorf("service account %q is not one of %q", id.ServiceAccount, serviceAccounts)
	}
}
