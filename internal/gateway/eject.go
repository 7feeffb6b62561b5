package gateway

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"ferry.dev/ferry/internal/tunnel"
)

// Passive ejection. The probe and the tunnel's keepalive find a dead
// gateway in seconds, but a hung one (stopped, overloaded, behind a
// black-holing link) keeps its TCP session up for KeepAliveInterval +
// KeepAliveTimeout. What every connection learns for free is that its
// attempt failed; ejection makes that lesson count for the next ones, so a
// failing destination stops taking new connections after one failure
// instead of one per connection. An ejected destination is still tried, but
// last: a client never fails because of an ejection.
//
// The state lives in small structs that SetRoutes resolves once per route
// (destHealth), so that the per-connection checks are a few atomic loads,
// with no map lookup and no lock.

// ejection is one breaker: a whole cluster's (a failure of its gateway:
// unreachable, overloaded, draining, every service there as unreachable), or
// one service's there (no ready endpoint). Closed (streak 0), it admits
// every connection. Open (now < until), it admits none. Half-open (the
// ejection has ended but no attempt has succeeded since), it admits one
// connection at a time, the trial: the others keep going elsewhere until the
// trial succeeds, so an ejected cluster comes back on the strength of one
// connection, not of the hundred that arrive the moment its ejection ends.
type ejection struct {
	until atomic.Int64 // unix nanoseconds; ejected while now < until
	// trial is when the current trial was admitted (unix nanoseconds), 0
	// for none. A trial that reports nothing within trialWindow (its
	// connection went elsewhere first, or it is still waiting) lets the
	// next connection try.
	trial atomic.Int64
	// streak counts consecutive failures; the backoff doubles with each.
	// It is written under mu, and read without it by succeeded.
	streak atomic.Int32
	mu     sync.Mutex
}

// silence tells a cluster that has gone quiet: attempts are waiting for it
// and it has answered none of them, nor anything else, for a while. A hung
// gateway is silent long before the first attempt's AttemptTimeout ends;
// a busy healthy one answers something every few milliseconds.
type silence struct {
	waiting atomic.Int32
	// since is when the cluster was last heard from (an answer, a
	// rejection included), or when an attempt began to wait with none
	// waiting before, whichever is later: unix nanoseconds.
	since atomic.Int64
}

// clusterState is what the ejector knows of one cluster.
type clusterState struct {
	ejection
	quiet silence
}

// destHealth is one destination's state: its cluster's and its service's
// there. SetRoutes resolves it once per route.
type destHealth struct {
	cluster *clusterState
	service *ejection
}

type serviceKey struct {
	cluster string
	target  tunnel.Target
}

// ejector keeps the ejections of one egress.
type ejector struct {
	base, max   time.Duration
	trialWindow time.Duration
	// quietAfter is how long a cluster may leave waiting attempts
	// unanswered before new connections try it only after the others.
	quietAfter time.Duration
	now        func() time.Time
	onEject    func(cluster string, scope string)

	mu       sync.Mutex
	clusters map[string]*clusterState
	services map[serviceKey]*ejection
}

func newEjector(base, max, trialWindow, quietAfter time.Duration, now func() time.Time, onEject func(cluster, scope string)) *ejector {
	return &ejector{
		base: base, max: max, trialWindow: trialWindow, quietAfter: quietAfter, now: now, onEject: onEject,
		clusters: map[string]*clusterState{}, services: map[serviceKey]*ejection{},
	}
}

// health returns d's state, created on first use. Called by SetRoutes, not
// per connection.
func (j *ejector) health(d Destination) destHealth {
	j.mu.Lock()
	defer j.mu.Unlock()
	c := j.clusters[d.Cluster]
	if c == nil {
		c = &clusterState{}
		j.clusters[d.Cluster] = c
	}
	k := serviceKey{d.Cluster, d.Target}
	s := j.services[k]
	if s == nil {
		s = &ejection{}
		j.services[k] = s
	}
	return destHealth{cluster: c, service: s}
}

// keepOnly drops the state of destinations no route has any more, so that
// service churn does not grow the maps. Routes still holding a dropped
// state keep using it until they are replaced.
func (j *ejector) keepOnly(routes map[int]Route) {
	clusters, services := map[string]bool{}, map[serviceKey]bool{}
	for _, r := range routes {
		for _, d := range r.Destinations {
			clusters[d.Cluster] = true
			services[serviceKey{d.Cluster, d.Target}] = true
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for c := range j.clusters {
		if !clusters[c] {
			delete(j.clusters, c)
		}
	}
	for k := range j.services {
		if !services[k] {
			delete(j.services, k)
		}
	}
}

// waiting records that an attempt waits for h's cluster; call done with
// whether the cluster answered (accepted or rejected) when it ends.
func (j *ejector) waiting(h destHealth) (done func(answered bool)) {
	q := &h.cluster.quiet
	if q.waiting.Add(1) == 1 {
		q.since.Store(j.now().UnixNano())
	}
	return func(answered bool) {
		if answered {
			q.since.Store(j.now().UnixNano())
		}
		q.waiting.Add(-1)
	}
}

// admit reports whether a connection may try the destination in its first
// pass. Asked only right before the attempt: a half-open breaker's
// admission is its one trial. A local destination is never quiet: it is not
// a gateway.
func (j *ejector) admit(h destHealth, local bool, now int64) bool {
	if !local {
		q := &h.cluster.quiet
		if q.waiting.Load() > 0 && now-q.since.Load() >= int64(j.quietAfter) {
			return false
		}
	}
	return j.admitBreaker(&h.cluster.ejection, now) && j.admitBreaker(h.service, now)
}

func (j *ejector) admitBreaker(e *ejection, now int64) bool {
	switch {
	case now < e.until.Load():
		return false
	case e.streak.Load() == 0:
		return true
	}
	t := e.trial.Load()
	return now-t >= int64(j.trialWindow) && e.trial.CompareAndSwap(t, now)
}

// ejected reports, without claiming a trial, whether h is ejected now.
func (j *ejector) ejected(h destHealth, now int64) bool {
	return now < h.cluster.until.Load() || now < h.service.until.Load()
}

// failed ejects d's cluster, or only its service there, for
// base × 2^(streak-1), capped at max, with ±20% jitter so that clusters
// ejected together do not all return together. It returns how long, and
// whether this failure started the ejection (rather than joined one).
func (j *ejector) failed(h destHealth, d Destination, wholeCluster bool) (time.Duration, bool) {
	e, scope := h.service, "service"
	if wholeCluster {
		e, scope = &h.cluster.ejection, "cluster"
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := j.now()
	if now.UnixNano() < e.until.Load() {
		// Connections that were already trying when the first one failed
		// report the same failure: it is one ejection, not several.
		return time.Duration(e.until.Load() - now.UnixNano()), false
	}
	streak := e.streak.Add(1)
	d0 := j.base
	for i := int32(1); i < streak && d0 < j.max; i++ {
		d0 *= 2
	}
	d0 = min(d0, j.max)
	d0 = time.Duration(float64(d0) * (0.8 + 0.4*rand.Float64()))
	e.until.Store(now.Add(d0).UnixNano())
	e.trial.Store(0)
	if j.onEject != nil {
		j.onEject(d.Cluster, scope)
	}
	return d0, true
}

// succeeded closes h's breakers: the next failure ejects for base again.
func (j *ejector) succeeded(h destHealth) {
	for _, e := range [2]*ejection{&h.cluster.ejection, h.service} {
		if e.streak.Load() != 0 {
			e.streak.Store(0)
			e.trial.Store(0)
		}
	}
}
