// Package controllerd wires ferry-controller together, as gatewayd wires
// ferry-gateway (the name also keeps it clear of controller-runtime's
// controller package): one controller-runtime
// manager (leader-elected in ferry-system) running the issuer (the
// controller's own identity and the gateway's certificate), the importer
// (one session and one reconcile key per Link), the validation of local
// exports (ServiceExport conditions, with the importer's feeds as the
// other clusters' view), and an admin HTTP server with /live, /ready and
// /metrics.
//
// cmd/ferry-controller only parses flags into Options; Validate checks
// them and Run runs until its context ends. Everything the daemon needs
// from outside (the Kubernetes config, the feed client, the prober, the
// Prometheus registry) can be injected, so tests run the real wiring
// in-process.
package controllerd
