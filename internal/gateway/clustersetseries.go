package gateway

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// clustersetSeries keeps the per-(service, cluster) series in step with the
// routes, under the egress lock before SetRoutes swaps them: the series of
// services no route carries any more go, and a route that is new or whose
// destinations changed sets its weight and tier gauges (dropping clusters it
// lost). It costs O(routes), plus a scan of the series per service gone, so
// unrelated route churn costs nothing per series.
func (e *Egress) clustersetSeries(want map[int]Route) {
	m := e.o.Metrics
	keep := map[string]bool{}
	for _, r := range want {
		if r.Clusterset && len(r.Destinations) > 0 {
			keep[r.Destinations[0].Target.Export()] = true
		}
	}
	gone := map[string]bool{}
	for _, l := range e.listeners {
		if cur := l.route.Load(); cur.Clusterset && len(cur.Destinations) > 0 && !keep[cur.Destinations[0].Target.Export()] {
			gone[cur.Destinations[0].Target.Export()] = true
		}
	}
	for s := range gone {
		service := prometheus.Labels{"service": s}
		for _, v := range []*prometheus.MetricVec{m.ClustersetConns.MetricVec, m.ClustersetFailures.MetricVec, m.ClustersetBytes.MetricVec,
			m.ClustersetEjections.MetricVec, m.ClustersetWeight.MetricVec, m.ClustersetTier.MetricVec} {
			v.DeletePartialMatch(service)
		}
	}
	m.recent.keepOnly(keep)
	for port, r := range want {
		if !r.Clusterset || len(r.Destinations) == 0 {
			continue
		}
		var old []Destination
		if l, ok := e.listeners[port]; ok {
			cur := l.route.Load()
			if cur.Clusterset {
				old = cur.Destinations
			}
			if cur.Clusterset && slices.Equal(old, r.Destinations) {
				continue
			}
		}
		service := r.Destinations[0].Target.Export()
		for _, d := range old {
			if !slices.ContainsFunc(r.Destinations, func(n Destination) bool { return n.Cluster == d.Cluster }) {
				m.ClustersetWeight.DeleteLabelValues(service, d.Cluster)
				m.ClustersetTier.DeleteLabelValues(service, d.Cluster)
			}
		}
		for _, d := range r.Destinations {
			m.ClustersetWeight.WithLabelValues(service, d.Cluster).Set(float64(d.Weight))
			m.ClustersetTier.WithLabelValues(service, d.Cluster).Set(float64(d.Tier))
		}
	}
}
