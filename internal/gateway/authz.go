package gateway

import (
	"errors"
	"slices"

	"ferry.dev/ferry/internal/exports"
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
	// ErrUnknownHostname: the target names a hostname that is not one of
	// the export's ready pods, or the export is not headless (only a
	// headless export publishes its pods' hostnames).
	ErrUnknownHostname = errors.New("hostname is not a ready pod of the exported headless service")
	// ErrExportsNotSynced means the export set is not known yet. Unlike
	// the others it is answered as unavailable (retriable): it says
	// nothing about the target, only that this gateway just started.
	ErrExportsNotSynced = errors.New("the export set has not synced yet")
)

// Authorizer decides whether caller may reach target. The target has
// already passed tunnel.Target.Validate, so an implementation may compare
// strings exactly. The allowed destinations must come from the local export
// set, never from anything the caller sent besides the target itself.
type Authorizer interface {
	Authorize(caller identity.ID, target tunnel.Target) error
}

// ExportSource is the cluster's export set: an exports.Publisher, which
// gatewayd's export watcher keeps current.
type ExportSource interface {
	Current() *exports.Set
}

// ExportAuthorizer is the Authorizer over the cluster's export set. It reads
// the current Set on each stream, lock-free, so a change takes effect for
// the next stream and streams already running are not cut. Until the set
// has synced every stream gets ErrExportsNotSynced.
type ExportAuthorizer struct{ src ExportSource }

// NewExportAuthorizer authorizes against src.
func NewExportAuthorizer(src ExportSource) *ExportAuthorizer { return &ExportAuthorizer{src: src} }

// Authorize implements Authorizer.
func (a *ExportAuthorizer) Authorize(caller identity.ID, t tunnel.Target) error {
	set := a.src.Current()
	if !set.Synced {
		return ErrExportsNotSynced
	}
	e, ok := set.Export(exports.Key{Namespace: t.Namespace, Name: t.Service})
	if !ok {
		return ErrNotExported
	}
	if !e.AllowedFor(caller.Cluster) {
		return ErrClusterNotAllowed
	}
	// A stream is TCP: a number the export has for UDP or SCTP only is not
	// one it may reach.
	if !slices.ContainsFunc(e.Ports, func(p exports.Port) bool { return p.Carried() && int(p.Port) == t.Port }) {
		return ErrUnknownPort
	}
	// A hostname is allowed only as the export publishes it: the exporting
	// cluster lists a headless Service's ready pods, and a pod it does not
	// list (not ready, not there, or a Service that has no per-pod names)
	// is not something it offers.
	if t.Hostname != "" && (e.Type != exports.Headless || !slices.Contains(e.Hostnames, t.Hostname)) {
		return ErrUnknownHostname
	}
	return nil
}
