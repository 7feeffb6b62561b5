// Package benchpeer measures Ferry's gateway pair side by side with a peer
// proxy (HAProxy) and with no proxy at all, in one run, on the same
// workloads, so that the reported ratios do not depend on what else the
// machine was doing on another day.
//
// Three paths carry the same bytes to the same loopback backend:
//
//   - direct: client → backend (the floor);
//   - ferry: client → west egress → pooled mTLS yamux tunnel → east ingress
//     → backend, built from internal/gateway and internal/identity exactly as
//     ferry-gateway wires them (minus Kubernetes);
//   - haproxy: client → "west" haproxy (TCP) → TLS 1.3 with a client
//     certificate → "east" haproxy (mTLS termination, client verified
//     against the mesh root) → backend.
//
// By default the Ferry pair runs in a child process (the harness binary
// re-executed, see IsChild and RunChild), like the two haproxy processes, so
// that the proxies' CPU time can be read per process from /proc and compared
// fairly; the client and backend stay in the harness process for every path.
//
// Workloads are bounded in count: one connection streaming N bytes each way
// (MB/s), M sequential new connections each doing one small echo
// (connect-to-first-response latency, conns/s), and P parallel persistent
// connections sharing R echo requests (req/s). Each repetition runs every
// path once per workload in a rotating order; the report is the median over
// repetitions. hack/bench is the command; docs/benchmarks.md has results.
package benchpeer
