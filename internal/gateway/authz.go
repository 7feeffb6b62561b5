package gateway

import (
	"errors"
	"slices"
	"sync/atomic"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/tunnel"
)

// Authorization failures. An Authorizer wraps one of them so ingress can
// count the reason; every one of them reaches the caller as the same
// StatusDenied, so a caller cannot probe which Services exist.
var (
	ErrNotExported       = errors.New("service is not exported")
	ErrClusterNotAllowed = errors.New("export does not allow the caller's cluster")
	ErrUnknownPort       = errors.New("port is not a port of the exported service")
)

// Authorizer decides whether caller may reach target. The target has
// already passed tunnel.Target.Validate, so an implementation may compare
// strings exactly. The allowed destinations must come from the local export
// set, never from anything the caller sent besides the target itself.
type Authorizer interface {
	Authorize(caller identity.ID, target tunnel.Target) error
}

// Export is one exported Service as ingress needs it.
type Export struct {
	Namespace string
	Service   string
	// Ports are the Service's ports; a stream for any other port is refused.
	Ports []int
	// AllowedClusters, when non-nil, are the only clusters that may import
	// the export (the ferry.dev/allowed-clusters annotation). nil means
	// every cluster of the mesh; an empty non-nil list means none.
	AllowedClusters []string
}

// ExportSet is an Authorizer over an in-memory export set that the wiring
// replaces whenever ServiceExports or Services change. Reads are lock-free,
// so authorization costs one map lookup per stream.
type ExportSet struct {
	m atomic.Pointer[map[exportKey]Export]
}

type exportKey struct{ ns, svc string }

// NewExportSet returns an empty set: nothing is exported until Replace.
func NewExportSet() *ExportSet {
	s := &ExportSet{}
	s.Replace(nil)
	return s
}

// Replace swaps in a new export set. It takes effect for the next stream;
// streams already running are not cut.
func (s *ExportSet) Replace(exports []Export) {
	m := make(map[exportKey]Export, len(exports))
	for _, e := range exports {
		e.Ports = slices.Clone(e.Ports)
		if e.AllowedClusters != nil {
			e.AllowedClusters = slices.Clone(e.AllowedClusters)
		}
		m[exportKey{e.Namespace, e.Service}] = e
	}
	s.m.Store(&m)
}

// Len is the number of exports.
func (s *ExportSet) Len() int { return len(*s.m.Load()) }

// Authorize implements Authorizer.
func (s *ExportSet) Authorize(caller identity.ID, t tunnel.Target) error {
	e, ok := (*s.m.Load())[exportKey{t.Namespace, t.Service}]
	if !ok {
		return ErrNotExported
	}
	if e.AllowedClusters != nil && !slices.Contains(e.AllowedClusters, caller.Cluster) {
		return ErrClusterNotAllowed
	}
	if !slices.Contains(e.Ports, t.Port) {
		return ErrUnknownPort
	}
	return nil
}
