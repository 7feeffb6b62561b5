package gateway

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Recent counts: what `ferry traffic` shows as the share a clusterset
// service's clusters actually took "over the last minute". A Prometheus
// counter answers that only to a scraper that kept the previous sample, so
// the gateway keeps the window itself: per (service, cluster), the new
// connections of the last RecentWindow, in RecentBuckets buckets, exported
// as a gauge computed when scraped.
const (
	RecentWindow  = time.Minute
	RecentBuckets = 6
)

type recentKey struct{ service, cluster string }

// recentCounter is one key's buckets: counts[i] holds the connections of
// the bucket that started at epochs[i] (in bucket units since the epoch).
type recentCounter struct {
	mu     sync.Mutex
	counts [RecentBuckets]uint64
	epochs [RecentBuckets]int64
}

// recent keeps the window for every clusterset (service, cluster).
type recent struct {
	now  func() time.Time
	desc *prometheus.Desc
	m    sync.Map // recentKey → *recentCounter
}

func newRecent(now func() time.Time) *recent {
	return &recent{now: now, desc: prometheus.NewDesc("ferry_gateway_clusterset_connections_last_minute",
		"New connections of a clusterset service that each cluster took over the last minute (in 10 s steps), for ferry traffic.",
		[]string{"service", "cluster"}, nil)}
}

const recentBucket = RecentWindow / RecentBuckets

func (r *recent) add(service, cluster string) {
	v, ok := r.m.Load(recentKey{service, cluster})
	if !ok {
		v, _ = r.m.LoadOrStore(recentKey{service, cluster}, &recentCounter{})
	}
	c := v.(*recentCounter)
	e := r.now().UnixNano() / int64(recentBucket)
	i := e % RecentBuckets
	c.mu.Lock()
	if c.epochs[i] != e {
		c.epochs[i], c.counts[i] = e, 0
	}
	c.counts[i]++
	c.mu.Unlock()
}

// sum is the key's count over the window ending now.
func (c *recentCounter) sum(now int64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n uint64
	for i := range RecentBuckets {
		if now-c.epochs[i] < RecentBuckets {
			n += c.counts[i]
		}
	}
	return n
}

// keepOnly forgets the keys of services no route carries any more.
func (r *recent) keepOnly(services map[string]bool) {
	r.m.Range(func(k, _ any) bool {
		if !services[k.(recentKey).service] {
			r.m.Delete(k)
		}
		return true
	})
}

func (r *recent) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }

func (r *recent) Collect(ch chan<- prometheus.Metric) {
	now := r.now().UnixNano() / int64(recentBucket)
	r.m.Range(func(k, v any) bool {
		key := k.(recentKey)
		ch <- prometheus.MustNewConstMetric(r.desc, prometheus.GaugeValue, float64(v.(*recentCounter).sum(now)), key.service, key.cluster)
		return true
	})
}
