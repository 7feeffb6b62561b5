package contract

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
