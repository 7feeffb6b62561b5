// Package mirror computes what the importing cluster should hold for one
// Link: the mirror Services "<svc>-<cluster>" and their EndpointSlices, the
// egress ports they use, and what could not be imported and why.
//
// Everything here is a pure function of its inputs (the Link, the remote
// exports, the local gateway's pod addresses, the remote's health, the
// namespaces that exist, the ports other links hold and the objects already
// in the API). Nothing talks to Kubernetes, so the whole policy is tested by
// tables, and the importer's reconcile is "compute, diff, apply".
//
// The objects follow docs/contracts.md: spec.ports[i].port is the exported
// port and spec.ports[i].targetPort the egress port the gateway listens on;
// the EndpointSlice lists the local gateway pods with those egress ports.
package mirror
