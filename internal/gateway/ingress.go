package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/tunnel"
)

// Stream-level rejection reasons (the transport adds its own, see the
// tunnel.Reason* constants). They are the values of the reason label.
const (
	ReasonBadHeader         = "bad_header"
	ReasonHeaderTooLarge    = "header_too_large"
	ReasonHeaderTimeout     = "header_timeout"
	ReasonInvalidTarget     = "invalid_target"
	ReasonNotExported       = "not_exported"
	ReasonClusterNotAllowed = "cluster_not_allowed"
	ReasonUnknownPort       = "unknown_port"
	ReasonUnknownHostname   = "unknown_hostname"
	ReasonDenied            = "denied"
	// ReasonNotSynced: the export set is not known yet (a gateway that
	// just started). Answered as unavailable, so the caller fails over.
	ReasonNotSynced         = "exports_not_synced"
	ReasonForbiddenIdentity = tunnel.ReasonForbiddenIdentity

	// Failure reasons: the stream was authorized but not connected.
	ReasonNoEndpoints = "no_endpoints"
	ReasonDialFailed  = "dial_failed"
)

// Dialer connects to backends (ingress) or remote gateways (egress);
// *net.Dialer satisfies it.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// IngressOptions configure NewIngress. Local, TLS, Authorizer and Endpoints
// are required.
type IngressOptions struct {
	// Local is this gateway's identity (contract.GatewayID(mesh, cluster)).
	Local identity.ID
	// TLS provides the server certificate and peer verification;
	// *identity.Source satisfies it.
	TLS tunnel.ServerTLS
	// Authorizer decides (caller, target); *ExportAuthorizer is one.
	Authorizer Authorizer
	// Endpoints lists ready backends; *EndpointTable is one.
	Endpoints EndpointPicker
	// Dialer connects to backends; defaults to a *net.Dialer.
	Dialer Dialer
	// FeedSink, if set, receives ALPN h2 connections from remote
	// controllers, for the export feed's gRPC server.
	FeedSink *tunnel.ConnListener
	Limits   Limits
	// Metrics may be nil (then series are kept but not registered).
	Metrics *Metrics
	Logger  *slog.Logger
	// Now is the clock for measurements and endpoint backoff; socket
	// deadlines always use the wall clock because the runtime poller does.
	Now func() time.Time
}

// Ingress serves tunnel streams from remote gateways: it validates and
// authorizes each target, then relays it to a ready local endpoint.
type Ingress struct {
	o   IngressOptions
	srv *tunnel.Server
	be  *backends
	log *slog.Logger
	// rejectLog rate-limits the per-stream rejection log.
	rejectLog logLimiter
}

// Default sets every unset collaborator (Dialer, Logger, Now, Metrics).
// NewIngress calls it; Limits arrive complete from their owner
// (gatewayd's Options.Default).
func (o *IngressOptions) Default() {
	if o.Dialer == nil {
		o.Dialer = &net.Dialer{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics, _ = NewMetrics(nil) // cannot fail without a registry
	}
}

// NewIngress checks the options and builds the ingress; call Serve.
func NewIngress(o IngressOptions) (*Ingress, error) {
	if o.Authorizer == nil || o.Endpoints == nil {
		return nil, errors.New("gateway: ingress needs an Authorizer and an EndpointPicker")
	}
	if err := o.Limits.Validate(); err != nil {
		return nil, err
	}
	o.Default()
	in := &Ingress{
		o:         o,
		log:       o.Logger.With("component", "ingress"),
		rejectLog: logLimiter{burst: 20},
	}
	in.be = newBackends(o.Endpoints, o.Dialer, o.Now, &in.o.Limits)
	srv, err := tunnel.NewServer(tunnel.ServerOptions{
		Local: o.Local, TLS: o.TLS, Handler: handler{in}, H2: o.FeedSink,
		Limits: o.Limits.Tunnel, Observer: observer{o.Metrics}, Logger: o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: ingress: %w", err)
	}
	in.srv = srv
	return in, nil
}

// Serve accepts connections on ln (the gateway port) until Shutdown.
func (in *Ingress) Serve(ctx context.Context, ln net.Listener) error {
	err := in.srv.Serve(ctx, ln)
	if errors.Is(err, tunnel.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown drains ingress: no new connections or streams, running streams
// finish until ctx ends, then everything is closed.
func (in *Ingress) Shutdown(ctx context.Context) error { return in.srv.Shutdown(ctx) }

// RetiringSessions is the inbound tunnel sessions retired but still
// carrying streams.
func (in *Ingress) RetiringSessions() int { return in.srv.RetiringSessions() }

// ActiveStreams is the number of streams being served.
func (in *Ingress) ActiveStreams() int { return in.srv.ActiveStreams() }

// handler keeps ServeStream off Ingress's public API.
type handler struct{ in *Ingress }

func (h handler) ServeStream(ctx context.Context, caller identity.ID, st *tunnel.Stream) {
	h.in.serveStream(ctx, caller, st)
}

func (in *Ingress) serveStream(ctx context.Context, caller identity.ID, st *tunnel.Stream) {
	lim := &in.o.Limits
	m := in.o.Metrics
	m.IngressActive.Inc()
	defer m.IngressActive.Dec()

	_ = st.SetDeadline(time.Now().Add(lim.HeaderTimeout))
	t, err := tunnel.ReadHeader(st, lim.MaxHeaderBytes)
	if err != nil {
		reason := ReasonBadHeader
		switch {
		case errors.Is(err, tunnel.ErrHeaderTooLarge):
			reason = ReasonHeaderTooLarge
		case isTimeout(err):
			reason = ReasonHeaderTimeout
		}
		in.reject(st, caller, tunnel.StatusBadHeader, reason, err, nil)
		return
	}
	if err := t.Validate(); err != nil {
		in.reject(st, caller, tunnel.StatusInvalidTarget, ReasonInvalidTarget, err, &t)
		return
	}
	// The transport admits only remote gateways to tunnel streams; checking
	// again here keeps the rule next to the authorization it protects.
	if caller != contract.GatewayID(caller.MeshDomain, caller.Cluster) || caller.Cluster == in.o.Local.Cluster ||
		caller.MeshDomain != in.o.Local.MeshDomain {
		in.reject(st, caller, tunnel.StatusDenied, ReasonForbiddenIdentity, errors.New("caller is not a remote gateway"), &t)
		return
	}
	if err := in.o.Authorizer.Authorize(caller, t); err != nil {
		status := tunnel.StatusDenied
		if errors.Is(err, ErrExportsNotSynced) {
			// Not a refusal: this gateway does not know yet. Retriable, so
			// a clusterset connection goes to another cluster instead.
			status = tunnel.StatusUnavailable
		}
		in.reject(st, caller, status, authzReason(err), err, &t)
		return
	}

	export := t.Export()
	log := in.log.With("caller_cluster", caller.Cluster, "export", export, "port", t.Port)
	if t.Hostname != "" {
		// Authorized, so one of the export's own hostnames: safe to log
		// unquoted, and kept out of the metric labels (one per pod).
		log = log.With("hostname", t.Hostname)
	}
	backend, addr, reason, err := in.be.dial(ctx, t)
	if err != nil {
		m.IngressFailed.WithLabelValues(export, reason).Inc()
		log.Warn("no backend for stream", "reason", reason, "err", err)
		_ = tunnel.WriteReply(st, tunnel.StatusUnavailable, "no ready endpoint accepted the connection")
		return
	}
	defer in.be.release(addr)
	if err := tunnel.WriteReply(st, tunnel.StatusOK, ""); err != nil {
		_ = backend.Close()
		log.Debug("caller went away before the reply", "err", err)
		return
	}
	_ = st.SetDeadline(time.Time{})
	m.IngressOpened.WithLabelValues(caller.Cluster, export).Inc()

	toBackend := m.IngressBytes.WithLabelValues("to_backend", caller.Cluster, export)
	fromBackend := m.IngressBytes.WithLabelValues("from_backend", caller.Cluster, export)
	ttfb := m.BackendTTFB.WithLabelValues(export)
	connected := in.o.Now()
	up, down, err := tunnel.Splice(ctx, st, asConn(backend), tunnel.SpliceOptions{
		IdleTimeout:   lim.IdleTimeout,
		AToB:          func(n int) { toBackend.Add(float64(n)) },
		BToA:          func(n int) { fromBackend.Add(float64(n)) },
		FirstByteBToA: func() { ttfb.Observe(in.o.Now().Sub(connected).Seconds()) },
	})
	log.Debug("stream done", "backend", addr, "bytes_to_backend", up, "bytes_from_backend", down, "err", err)
}

// reject answers a refused stream and counts it. Nothing has been dialed,
// so no backend saw a byte. t is nil when the header did not decode; a
// decoded target is logged quoted because it is caller-supplied.
func (in *Ingress) reject(st *tunnel.Stream, caller identity.ID, s tunnel.Status, reason string, err error, t *tunnel.Target) {
	in.o.Metrics.IngressRejected.WithLabelValues(reason).Inc()
	if in.rejectLog.allow(in.log) {
		attrs := []any{"caller_cluster", caller.Cluster, "reason", reason, "err", err}
		if t != nil {
			attrs = append(attrs, "target", fmt.Sprintf("%q", t.String()))
		}
		in.log.Info("stream rejected", attrs...)
	}
	msg := reason
	if s == tunnel.StatusDenied {
		msg = "denied" // one answer for every authorization failure
	}
	_ = st.SetWriteDeadline(time.Now().Add(in.o.Limits.HeaderTimeout))
	_ = tunnel.WriteReply(st, s, msg)
}

func authzReason(err error) string {
	switch {
	case errors.Is(err, ErrNotExported):
		return ReasonNotExported
	case errors.Is(err, ErrClusterNotAllowed):
		return ReasonClusterNotAllowed
	case errors.Is(err, ErrUnknownPort):
		return ReasonUnknownPort
	case errors.Is(err, ErrUnknownHostname):
		return ReasonUnknownHostname
	case errors.Is(err, ErrExportsNotSynced):
		return ReasonNotSynced
	}
	return ReasonDenied
}
