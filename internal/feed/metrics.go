package feed

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the feed server's Prometheus metrics. Labels are bounded:
// cluster is an authenticated importer's cluster, and beyond
// maxClusterLabels distinct clusters further ones count as "other".
type Metrics struct {
	Subscribers prometheus.Gauge
	Version     prometheus.Gauge
	// Messages counts messages sent, by cluster and kind (snapshot, delta,
	// heartbeat); chunks count one each.
	Messages *prometheus.CounterVec
	// Bytes counts encoded message bytes sent, by cluster.
	Bytes *prometheus.CounterVec
	// Updates counts logical updates (however many chunks), by cluster and
	// kind (snapshot, delta): resumes that work show as deltas.
	Updates *prometheus.CounterVec
	// Rejected counts refused subscriptions by reason.
	Rejected *prometheus.CounterVec

	mu       sync.Mutex
	clusters map[string]struct{}
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests and callers that do not export metrics).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Subscribers: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "ferry", Subsystem: "feed", Name: "subscribers", Help: "Feed streams currently subscribed."}),
		Version:     prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "ferry", Subsystem: "feed", Name: "version_sequence", Help: "Sequence part of the feed's current version (changes since start)."}),
		Messages:    prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ferry", Subsystem: "feed", Name: "messages_sent_total", Help: "Feed messages sent, by importing cluster and kind."}, []string{"cluster", "kind"}),
		Bytes:       prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ferry", Subsystem: "feed", Name: "bytes_sent_total", Help: "Encoded feed message bytes sent, by importing cluster."}, []string{"cluster"}),
		Updates:     prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ferry", Subsystem: "feed", Name: "updates_sent_total", Help: "Snapshots and deltas sent, by importing cluster and kind."}, []string{"cluster", "kind"}),
		Rejected:    prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ferry", Subsystem: "feed", Name: "rejected_total", Help: "Feed subscriptions refused, by reason."}, []string{"reason"}),
		clusters:    map[string]struct{}{},
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.Subscribers, m.Version, m.Messages, m.Bytes, m.Updates, m.Rejected} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("feed: metrics: %w", err)
			}
		}
	}
	return m, nil
}

// clusterLabel bounds the cluster label's cardinality.
func (m *Metrics) clusterLabel(cluster string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.clusters[cluster]; ok {
		return cluster
	}
	if len(m.clusters) >= maxClusterLabels {
		return "other"
	}
	m.clusters[cluster] = struct{}{}
	return cluster
}

// Kinds of messages and updates.
const (
	kindSnapshot  = "snapshot"
	kindDelta     = "delta"
	kindHeartbeat = "heartbeat"
)

// Rejection reasons.
const (
	rejectUnauthenticated = "unauthenticated"
	rejectForbidden       = "forbidden"
	rejectLimit           = "limit"
	rejectProtocol        = "protocol"
)
