// Package endpoints resolves a Service port to its ready endpoints the way
// kube-proxy does: Service port number -> port name -> the EndpointSlice ports
// of that name -> ready, non-terminating addresses. The gateway's ingress
// picks backends from it (never from DNS), and the test harness dials through
// it.
//
// Ready is the pure rule; Index serves it from an informer cache.
package endpoints
