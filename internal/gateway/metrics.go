package gateway

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"ferry.dev/ferry/internal/tunnel"
)

// Metrics are the gateway's Prometheus series. Label values are bounded by
// construction: a reason from a fixed set, a cluster name from a verified
// identity or from local configuration, and an export ("ns/svc") only after
// the target was authorized against the local export set or taken from
// local egress configuration. Nothing a caller sends becomes a label value
// unless it matched something local first.
type Metrics struct {
	IngressOpened   *prometheus.CounterVec   // cluster, export
	IngressRejected *prometheus.CounterVec   // reason
	IngressFailed   *prometheus.CounterVec   // export, reason
	IngressBytes    *prometheus.CounterVec   // direction (to_backend|from_backend), cluster, export
	IngressActive   prometheus.Gauge         //
	BackendTTFB     *prometheus.HistogramVec // export
	InboundSessions *prometheus.GaugeVec     // cluster

	EgressOpened *prometheus.CounterVec // cluster, export
	EgressFailed *prometheus.CounterVec // cluster, reason
	EgressBytes  *prometheus.CounterVec // direction (to_remote|from_remote), cluster, export
	EgressActive prometheus.Gauge       //
	// EgressCallersRefused counts callers the CallerPolicy refused: closed
	// (mode enforce) or only counted (mode audit).
	EgressCallersRefused *prometheus.CounterVec // reason, mode
	Sessions             *prometheus.GaugeVec   // remote
	RemoteUp             *prometheus.GaugeVec   // remote
	Ejections            *prometheus.CounterVec // cluster, scope (cluster|service)

	// Clusterset routes, by (service, destination cluster): service is the
	// export "namespace/name".
	ClustersetConns    *prometheus.CounterVec // service, cluster
	ClustersetFailures *prometheus.CounterVec // service, cluster, reason
	ClustersetBytes    *prometheus.CounterVec // direction (to_remote|from_remote), service, cluster
	// ClustersetEjections counts the ejections a clusterset service's
	// connections started: of the whole cluster or of the service there.
	ClustersetEjections *prometheus.CounterVec // service, cluster
	// ClustersetWeight is each destination's weight and ClustersetTier its
	// tier, as this gateway applies them now.
	ClustersetWeight *prometheus.GaugeVec // service, cluster
	ClustersetTier   *prometheus.GaugeVec // service, cluster
	// recent is the last minute's connections per (service, cluster).
	recent *recent
}

// NewMetrics creates the series and registers them with reg, which should be
// the caller's own registry rather than the global one. A nil reg leaves
// them unregistered (tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const ns, sub = "ferry", "gateway"
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	gv := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	m := &Metrics{
		IngressOpened:   cv("ingress_streams_opened_total", "Tunnel streams authorized and connected to a backend.", "cluster", "export"),
		IngressRejected: cv("ingress_rejected_total", "Connections and streams refused at ingress, by reason; no byte reached a backend.", "reason"),
		IngressFailed:   cv("ingress_streams_failed_total", "Authorized streams that could not reach a ready backend.", "export", "reason"),
		IngressBytes:    cv("ingress_bytes_total", "Bytes relayed by ingress.", "direction", "cluster", "export"),
		IngressActive:   g("ingress_active_streams", "Tunnel streams being served by ingress."),
		BackendTTFB: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "backend_time_to_first_byte_seconds",
			Help:    "Time from backend connect to its first byte.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10), // 0.5ms .. ~131s
		}, []string{"export"}),
		InboundSessions: gv("tunnel_inbound_sessions", "Tunnel sessions from remote gateways, by caller cluster.", "cluster"),

		EgressOpened: cv("egress_streams_opened_total", "Client connections carried to a remote cluster.", "cluster", "export"),
		EgressFailed: cv("egress_streams_failed_total", "Client connections that could not be carried to a remote cluster.", "cluster", "reason"),
		EgressBytes:  cv("egress_bytes_total", "Bytes relayed by egress.", "direction", "cluster", "export"),
		EgressActive: g("egress_active_connections", "Client connections being relayed by egress."),
		EgressCallersRefused: cv("egress_callers_refused_total",
			"Egress connections whose caller may not use the port, by reason; mode enforce closed them, mode audit served them.", "reason", "mode"),
		Sessions:        gv("tunnel_sessions", "Live tunnel sessions to a remote cluster.", "remote"),
		RemoteUp:        gv("remote_up", "1 if at least one tunnel session to the remote cluster is live.", "remote"),
		ClustersetConns: cv("clusterset_connections_total", "New connections of a clusterset service, by the cluster that took them (after any failover).", "service", "cluster"),
		ClustersetFailures: cv("clusterset_attempts_failed_total",
			"Attempts of a clusterset service's connections that failed at a cluster, by reason; the connection then went to the next cluster, or failed if none was left.", "service", "cluster", "reason"),
		ClustersetBytes:  cv("clusterset_bytes_total", "Bytes relayed for a clusterset service, by destination cluster.", "direction", "service", "cluster"),
		ClustersetWeight: gv("clusterset_weight", "The weight this gateway gives a clusterset service's destination cluster now: the route's, or its ready endpoints.", "service", "cluster"),
		ClustersetTier:   gv("clusterset_tier", "The tier (order of preference, 0 first) of a clusterset service's destination cluster on this gateway now.", "service", "cluster"),
		ClustersetEjections: cv("clusterset_ejections_total",
			"Ejections that a clusterset service's failed attempts started, of the whole destination cluster or of the service there.", "service", "cluster"),
		recent:    newRecent(time.Now),
		Ejections: cv("ejections_total", "Destinations tried last for a while after a failed attempt: a whole cluster, or one service there.", "cluster", "scope"),
	}
	// Every refusal reason starts at zero. rate() and increase() need a
	// sample before the first increment, or the first refusals of a reason
	// count for nothing and an alert on them never fires
	// (internal/monitoring); the label values are a fixed set anyway.
	for _, r := range ingressRejectReasons {
		m.IngressRejected.WithLabelValues(r)
	}
	for _, r := range []string{ReasonCallerNotSynced, ReasonCallerNotPod, ReasonCallerNamespace} {
		for _, mode := range []CallerMode{CallerEnforce, CallerAudit} {
			m.EgressCallersRefused.WithLabelValues(r, string(mode))
		}
	}
	if reg != nil {
		var errs []error
		for _, c := range []prometheus.Collector{
			m.IngressOpened, m.IngressRejected, m.IngressFailed, m.IngressBytes, m.IngressActive, m.BackendTTFB,
			m.InboundSessions, m.EgressOpened, m.EgressFailed, m.EgressBytes, m.EgressActive, m.EgressCallersRefused, m.Sessions, m.RemoteUp, m.Ejections,
			m.ClustersetConns, m.ClustersetFailures, m.ClustersetBytes, m.ClustersetEjections, m.ClustersetWeight, m.ClustersetTier, m.recent,
		} {
			errs = append(errs, reg.Register(c))
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ingressRejectReasons are the values of IngressRejected's reason label:
// the transport's (tunnel.Reason*) and the stream handler's.
var ingressRejectReasons = []string{
	tunnel.ReasonHandshake, tunnel.ReasonHandshakeTimeout, tunnel.ReasonNoClientCert, tunnel.ReasonUntrustedPeer,
	tunnel.ReasonHandshakeLimit, tunnel.ReasonIPHandshakeLimit, tunnel.ReasonHandshakeEvicted,
	tunnel.ReasonConnectionLimit, tunnel.ReasonCallerLimit, tunnel.ReasonStreamLimit,
	tunnel.ReasonCallerStreamMemory, tunnel.ReasonTotalStreamMemory, tunnel.ReasonForbiddenIdentity,
	tunnel.ReasonProtocol, tunnel.ReasonDraining, tunnel.ReasonFeedUnavailable, tunnel.ReasonFeedCallerLimit,
	tunnel.ReasonH2Flood, tunnel.ReasonPeerUntrusted, tunnel.ReasonPeerExpired,
	ReasonBadHeader, ReasonHeaderTooLarge, ReasonHeaderTimeout, ReasonInvalidTarget, ReasonNotExported,
	ReasonClusterNotAllowed, ReasonUnknownPort, ReasonUnknownHostname, ReasonDenied, ReasonNotSynced,
}

// observer adapts Metrics to tunnel.Observer without putting the adapter's
// methods on Metrics itself, whose fields already use those names.
type observer struct{ m *Metrics }

var _ tunnel.Observer = observer{}

func (o observer) Rejected(reason string) { o.m.IngressRejected.WithLabelValues(reason).Inc() }
func (o observer) Sessions(remote string, n int) {
	o.m.Sessions.WithLabelValues(remote).Set(float64(n))
}
func (o observer) RemoteUp(remote string, up bool) { o.m.RemoteUp.WithLabelValues(remote).Set(b2f(up)) }
func (o observer) ForgetRemote(remote string) {
	o.m.Sessions.DeleteLabelValues(remote)
	o.m.RemoteUp.DeleteLabelValues(remote)
}
func (o observer) InboundSessions(cluster string, delta int) {
	o.m.InboundSessions.WithLabelValues(cluster).Add(float64(delta))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
