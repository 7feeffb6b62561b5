// Package endpoints resolves a Service port to its ready endpoints the way
// kube-proxy does: Service port number -> port name -> the EndpointSlice ports
// of that name -> ready, non-terminating addresses. The gateway's ingress
// picks backends from it (never from DNS), and the test harness dials through
// it.
//
// A tunnel target may name one pod of a headless Service by hostname;
// ReadyHost narrows the same rule to the ready endpoints whose EndpointSlice
// hostname is that one, so the pod is found exactly as the Service's other
// endpoints are, and never through DNS.
//
// Ready and ReadyHost are the pure rules; Index serves them from an
// informer cache.
package endpoints
