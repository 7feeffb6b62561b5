package gateway

import (
	"fmt"
	"net"
	"net/netip"
)

// CallerPolicy decides who may use an egress port. Every egress port
// belongs to one local Service (a mirror or a clusterset Service) in
// Route.Namespace; anyone who can route to the gateway pod could otherwise
// dial the port directly and reach every import of every namespace,
// bypassing the NetworkPolicies written for that Service's namespace
// (docs/security.md, finding 3).
type CallerPolicy interface {
	// Refuse returns "" when the client at addr may use an egress port of a
	// Service in namespace, or else why not: one of the Reason* constants
	// of this file (a metric label value). It is called on the accept path
	// of every egress connection, so it must answer from memory, at once;
	// and it must refuse while it does not know (fail closed).
	Refuse(addr netip.Addr, namespace string) (reason string)
}

// Why a caller was refused (label values of
// ferry_gateway_egress_callers_refused_total).
const (
	// ReasonCallerNotSynced: the policy's view of the cluster is not
	// complete yet.
	ReasonCallerNotSynced = "caller_not_synced"
	// ReasonCallerNotPod: the address is no running pod's (a node, a
	// hostNetwork pod, a host outside the cluster) and no option allows it.
	ReasonCallerNotPod = "caller_not_pod"
	// ReasonCallerNamespace: the caller is a pod in a namespace that may not
	// use the Service's egress ports.
	ReasonCallerNamespace = "caller_namespace"
)

// CallerMode says what egress does with a caller the policy refuses.
type CallerMode string

const (
	// CallerEnforce closes a refused caller's connection at once; nothing is
	// dialed. The default.
	CallerEnforce CallerMode = "enforce"
	// CallerAudit only counts and logs a refused caller and serves it, for
	// rolling the policy out on a cluster that ran without it.
	CallerAudit CallerMode = "audit"
)

// CallerModes are the valid modes, the default first.
func CallerModes() []CallerMode { return []CallerMode{CallerEnforce, CallerAudit} }

// Validate refuses a mode that is not one of CallerModes.
func (m CallerMode) Validate() error {
	for _, v := range CallerModes() {
		if m == v {
			return nil
		}
	}
	return fmt.Errorf("egress caller mode %q: want %q or %q", m, CallerEnforce, CallerAudit)
}

// AnyCaller lets every caller use every egress port. Only for tests and
// benchmarks, whose clients are not pods; the daemon never uses it.
var AnyCaller CallerPolicy = anyCaller{}

type anyCaller struct{}

func (anyCaller) Refuse(netip.Addr, string) string { return "" }

// callerAddr is a connection's client address, IPv4-mapped IPv6 unmapped so
// that a dual-stack listener and an IPv4 pod IP agree.
func callerAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
