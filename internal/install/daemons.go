package install

import "fmt"

// The daemons' command lines. They are kept here, apart from the object
// builders, because they must match the flags that cmd/ferry-controller and
// cmd/ferry-gateway define; TestDaemonFlagsExist checks that they do. Values
// equal to the daemons' defaults are still spelled out, so the manifest
// says what runs and a changed default cannot silently change an install.

// ClustersetPortRange is the controller's default --clusterset-port-range
// (docs/contracts.md). The controller refuses to start if it overlaps the
// egress range, so --egress-ports must stay clear of it.
const ClustersetPortRange = "49000-49999"

const clustersetFirst, clustersetLast = 49000, 49999

func controllerArgs(s spec) []string {
	admin := fmt.Sprintf(":%d", ControllerAdminPort)
	return []string{
		"--cluster-name=" + s.clusterName,
		"--mesh-domain=" + s.meshDomain,
		"--egress-port-range=" + s.egressPorts,
		"--clusterset-port-range=" + ClustersetPortRange,
		"--gateway-service=" + Namespace + "/" + GatewayName,
		"--issuer-secret=" + IssuerSecret,
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
		"--namespace=" + Namespace,
		"--tls-secret=" + GatewayTLSSecret,
		// The same range as the controller's: the gateway opens no egress
		// port outside what the controller may allocate.
		"--egress-port-range=" + s.egressPorts,
		// The clusterset range (docs/contracts.md, "Clusterset services"):
		// not configurable at install yet, so the daemons' default, spelled
		// out like the rest; the controller must allocate from the same.
		"--clusterset-port-range=" + ClustersetPortRange,
		fmt.Sprintf("--ingress-addr=:%d", IngressPort),
		fmt.Sprintf("--admin-addr=:%d", GatewayAdminPort),
	}
}
