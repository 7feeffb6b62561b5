package install

import (
	"fmt"

	"ferry.dev/ferry/internal/contract"
)

// The daemons' command lines. They are kept here, apart from the object
// builders, because they must match the flags that cmd/ferry-controller and
// cmd/ferry-gateway define; TestDaemonFlagsExist checks that they do. Values
// equal to the daemons' defaults are still spelled out, so the manifest
// says what runs and a changed default cannot silently change an install.

func controllerArgs(s spec) []string {
	admin := fmt.Sprintf(":%d", contract.ControllerAdminPort)
	return []string{
		"--cluster-name=" + s.clusterName,
		"--mesh-domain=" + s.meshDomain,
		"--egress-port-range=" + s.egressPorts,
		"--clusterset-port-range=" + contract.DefaultClustersetRange().String(),
		"--gateway-service=" + contract.SystemNamespace + "/" + contract.GatewayName,
		"--issuer-secret=" + contract.IssuerSecret,
		// One admin server for /live, /ready and /metrics (contracts.md).
		"--health-addr=" + admin,
		"--metrics-addr=" + admin,
		// On even with one replica, so scaling up needs no re-render and a
		// rollout never has two writers.
		"--leader-elect=true",
	}
}

func gatewayArgs(s spec) []string {
	return []string{
		"--cluster-name=" + s.clusterName,
		"--mesh-domain=" + s.meshDomain,
		"--namespace=" + contract.SystemNamespace,
		"--tls-secret=" + contract.GatewayTLSSecret,
		// The same range as the controller's: the gateway opens no egress
		// port outside what the controller may allocate.
		"--egress-port-range=" + s.egressPorts,
		// The clusterset range (docs/contracts.md, "Clusterset services"):
		// not configurable at install yet, so the daemons' default, spelled
		// out like the rest; the controller must allocate from the same.
		"--clusterset-port-range=" + contract.DefaultClustersetRange().String(),
		// Who may use an egress port (docs/contracts.md, "Egress callers"):
		// the NetworkPolicy admits the cluster's pods, the gateway checks
		// their namespace.
		"--egress-callers=enforce",
		fmt.Sprintf("--ingress-addr=:%d", contract.IngressPort),
		fmt.Sprintf("--admin-addr=:%d", contract.GatewayAdminPort),
	}
}
