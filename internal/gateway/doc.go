// Package gateway is the Kubernetes-free core of ferry-gateway: ingress
// (tunnel streams from remote gateways, authorized against the local export
// set and relayed to ready local endpoints), egress (local ports whose
// connections are carried to remote gateways), their limits, metrics,
// health endpoints and drain.
//
// It knows nothing of Kubernetes or flags. Ingress authorizes against the
// export model (an exports.Set, through ExportAuthorizer, or any
// Authorizer). The wiring in internal/gatewayd keeps that set current from
// ServiceExports, serves endpoints from EndpointSlices (any
// EndpointPicker), turns mirror Services into egress Routes and Links into
// tunnel.Remotes, tells egress who may use each port (a CallerPolicy over
// the cluster's pods), and calls the setters whenever they change; everything
// applies to the next connection without a restart.
//
// The transport underneath (TLS, ALPN, yamux, the stream header) lives in
// package tunnel. docs/gateway.md explains the design and the limits.
package gateway
