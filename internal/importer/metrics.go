package importer

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// metrics are the importer's Prometheus series. Every series that carries a
// link label is deleted when the Link goes, so cardinality follows the
// number of Links.
type metrics struct {
	feedLag         *prometheus.HistogramVec
	imports         *prometheus.GaugeVec
	writes          *prometheus.CounterVec
	reconcileErrors *prometheus.CounterVec
	healthy         *prometheus.GaugeVec
	probe           *prometheus.HistogramVec
	passes          *prometheus.HistogramVec
	age             *ageCollector
}

func newMetrics(reg prometheus.Registerer, c clock.PassiveClock) (*metrics, error) {
	m := &metrics{
		feedLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_importer_feed_lag_seconds",
			Help:    "Time from a feed update's arrival to the reconcile that applied it.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"link"}),
		imports: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_importer_imported_services",
			Help: "Exports currently mirrored, per Link.",
		}, []string{"link"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_importer_writes_total",
			Help: "API writes by the importer, by kind, verb and reason.",
		}, []string{"kind", "verb", "reason"}),
		reconcileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_importer_reconcile_errors_total",
			Help: "Reconciles of a Link that ended in an error (they are retried with backoff).",
		}, []string{"link"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_importer_gateway_health",
			Help: "Remote gateway health per Link: 0 healthy, 1 unhealthy (endpoints not ready), 2 stale (mirrors withdrawn).",
		}, []string{"link"}),
		// The probe's round trip is the remote gateway's latency as this
		// cluster sees it; `ferry gateways` shows its p50 and p99.
		probe: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_importer_probe_duration_seconds",
			Help:    "Duration of data-path probes of the remote gateway (TCP, TLS handshake, identity check), by result.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"link", "result"}),
		// The cost of a full pass is what the consistency check costs;
		// a scoped pass's is what one change costs.
		passes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_importer_pass_duration_seconds",
			Help:    "Duration of a Link's reconcile pass (compute, claims and writes), by mode: full (every export) or scoped (the exports that changed).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"mode"}),
		age: &ageCollector{clock: c, desc: prometheus.NewDesc(
			"ferry_importer_last_sync_age_seconds",
			"Seconds since the feed last delivered anything (update or heartbeat): the age of the imported data.",
			[]string{"link"}, nil)},
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.feedLag, m.imports, m.writes, m.reconcileErrors, m.healthy, m.probe, m.passes, m.age} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) forget(link string) {
	m.feedLag.DeleteLabelValues(link)
	m.imports.DeleteLabelValues(link)
	m.reconcileErrors.DeleteLabelValues(link)
	m.healthy.DeleteLabelValues(link)
	m.probe.DeletePartialMatch(prometheus.Labels{"link": link})
}

func (m *metrics) observeProbe(link string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.probe.WithLabelValues(link, result).Observe(d.Seconds())
}

// ageCollector computes the data age at scrape time from the sessions'
// last contact, so it is exact without a goroutine updating a gauge and
// heartbeats cost nothing.
type ageCollector struct {
	clock clock.PassiveClock
	desc  *prometheus.Desc
	mu    sync.Mutex
	each  func(yield func(link string, last time.Time))
}

func (a *ageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- a.desc }

func (a *ageCollector) Collect(ch chan<- prometheus.Metric) {
	a.mu.Lock()
	each := a.each
	a.mu.Unlock()
	if each == nil {
		return
	}
	now := a.clock.Now()
	each(func(link string, t time.Time) {
		if !t.IsZero() {
			ch <- prometheus.MustNewConstMetric(a.desc, prometheus.GaugeValue, now.Sub(t).Seconds(), link)
		}
	})
}

func (a *ageCollector) source(each func(yield func(link string, last time.Time))) {
	a.mu.Lock()
	a.each = each
	a.mu.Unlock()
}
